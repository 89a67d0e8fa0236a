/**
 * `npm run stress -- --mode MODE --duration D [--containers N] [--kill-daemon-every D]`: a real
 * skiffd under sustained load and hostile input, with the figures that say whether it holds up
 * (docs/reliability.md): operations and errors by kind, `list` latency from a separate
 * well-behaved client, the daemon's longest event loop stall (its metrics endpoint), its RSS and
 * fds over time, instances against exit notifications across kill -9 restarts, and what was
 * left behind at the end. It measures; it asserts nothing. Outside CI: it takes the machine.
 */
import { spawn } from "node:child_process";
import { randomInt } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { Worker } from "node:worker_threads";
import {
  connect,
  ConnectionClosedError,
  RuntimeError,
  TimeoutError,
  type Client,
} from "../src/client/index.js";
import {
  parseStressArgs,
  STRESS_USAGE,
  StressUsageError,
  type StressMode,
  type StressOptions,
} from "./stress-args.js";
import { HOSTILE_KINDS, NotificationWatcher, runHostile } from "./stress-clients.js";
import { EXAMPLE_BUILD, StressDaemon, type Leaks } from "./stress-daemon.js";
import type { ProberBatch, ProberConfig } from "./stress-prober.js";
import {
  Counts,
  ExitLedger,
  fmtDuration,
  fmtMiB,
  fmtMs,
  LatencyRecorder,
  Rng,
  thin,
  type ExitAccount,
} from "./stress-stats.js";

/** Example containers the chaos worker starts (httpd-idle is left out: it binds 127.0.0.1:8081 on the host). */
const EXAMPLES_TO_RUN = [
  "hello-world:0.0.1",
  "crashing:0.0.1",
  "memeater:0.0.1",
  "hello-resource:0.0.1",
  "httpd:0.0.1",
];
const LIST_INTERVAL_MS = 20;
const SAMPLE_EVERY_MS = 1000;
const LIST_GOAL_MS = 100;
/** Per request; a longer wait is a finding (counted as request-timeout), not a hang of the harness. */
const REQUEST_TIMEOUT_MS = 30_000;

type Op = (w: WorkerContext) => Promise<void>;

interface Sample {
  atMs: number;
  rssBytes: number;
  fds: number;
  loopMaxMs: number;
}

/** Shared state of one run. */
class Run {
  readonly ops = new Counts();
  readonly errors = new Counts();
  readonly hostile = new Counts();
  readonly notifications = new Counts();
  readonly ledger = new ExitLedger();
  readonly list: LatencyRecorder;
  listFailures = 0;
  listOverGoal = 0;
  readonly series: Sample[] = [];
  /** Longest loop delay over all daemon instances (each restart starts its histogram anew). */
  loopMaxMs = 0;
  /** The same, read when the packages were installed: the setup's share. */
  loopSetupMaxMs = Number.NaN;
  /** Longest "recent" (10-20 s) reading taken once the setup was 20 s past: the load's own. */
  loopLoadMaxMs = Number.NaN;
  /** Longest "recent" reading in the current report window. */
  loopWindowMaxMs = Number.NaN;
  loadStartedAt = Number.POSITIVE_INFINITY;
  /** Longest gap of the same timer in a bare node process (the machine's share), whole run / window. */
  baselineMaxMs = Number.NaN;
  baselineWindowMaxMs = Number.NaN;
  loopP99Ms = Number.NaN;
  loopResolutionMs = Number.NaN;
  kills = 0;
  restartFailures = 0;
  stopping = false;
  /** Set while the daemon is down on purpose; workers wait instead of counting errors. */
  daemonDown: Promise<void> | undefined;
  readonly startedAt = Date.now();
  readonly harnessLoop = monitorEventLoopDelay({ resolution: 10 });
  readonly watcher: NotificationWatcher;

  constructor(
    readonly options: StressOptions,
    readonly daemon: StressDaemon,
    readonly rng: Rng,
  ) {
    this.list = new LatencyRecorder(1_000_000, () => rng.next());
    this.watcher = new NotificationWatcher(daemon.socketPath, this.ledger, this.notifications);
    this.harnessLoop.enable();
  }

  get elapsed(): string {
    return fmtDuration(Date.now() - this.startedAt);
  }
}

/** One worker: its own connection and, for the stress modes, its own container. */
class WorkerContext {
  client: Client | undefined;

  constructor(
    readonly run: Run,
    readonly container: string,
    readonly rng: Rng,
  ) {}

  async connection(): Promise<Client> {
    if (this.client && !this.client.connection.closed) return this.client;
    if (this.run.daemonDown) await this.run.daemonDown;
    this.client = await connect(this.run.daemon.url, { timeout: REQUEST_TIMEOUT_MS });
    return this.client;
  }

  /**
   * Runs one request, counting it by `kind` and a failure as `kind: error kind`; resolves with
   * `{ value }`, or undefined when it failed.
   */
  async op<T>(kind: string, call: (c: Client) => Promise<T>): Promise<{ value: T } | undefined> {
    this.run.ops.add(kind);
    try {
      return { value: await call(await this.connection()) };
    } catch (e) {
      this.run.errors.add(`${kind}: ${errorKind(e)}`);
      return undefined;
    }
  }

  get name(): string {
    return this.container.slice(0, this.container.indexOf(":"));
  }

  /** Instances this container ran: lines in its persist directory's `runs`. */
  async runs(): Promise<number> {
    return runsOf(this.run.daemon, this.name);
  }

  /** Waits until the container ran `n` instances (at most `timeoutMs`); counts a timeout as an error. */
  async waitRuns(n: number, timeoutMs = 10_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while ((await this.runs()) < n) {
      if (Date.now() > deadline) {
        this.run.errors.add("harness: no sign of the instance within 10 s");
        return false;
      }
      await sleep(10);
    }
    return true;
  }
}

function errorKind(e: unknown): string {
  if (e instanceof RuntimeError) return `error:${e.variant}`;
  if (e instanceof TimeoutError) return "request-timeout";
  if (e instanceof ConnectionClosedError) return "connection-closed";
  if (e instanceof Error) return `${e.name}:${(e as NodeJS.ErrnoException).code ?? e.message.slice(0, 40)}`;
  return "unknown";
}

async function runsOf(daemon: StressDaemon, name: string): Promise<number> {
  const text = await readFile(join(daemon.dataDir, name, "runs"), "utf8").catch(() => "");
  return text.split("\n").filter(Boolean).length;
}

// ------------------------------------------------------------------------------------------
// Operations on a worker's own stress container

const LONG = { STRESS_SLEEP: "3600" };

/**
 * Stops the worker's container when it runs (after an error, or left by a previous op), once
 * every instance the daemon announced has run its first command: an instance stopped before
 * that would be an exit without its ground truth.
 */
async function settle(w: WorkerContext): Promise<void> {
  const data = await w.op("inspect", (c) => c.inspect(w.container));
  if (!data?.value.process) return;
  const deadline = Date.now() + 5000;
  while ((await w.runs()) < w.run.ledger.startedOf(w.container) && Date.now() < deadline) await sleep(10);
  await w.op("stop", (c) => c.stop(w.container, 1));
}

const startStop: Op = async (w) => {
  const before = await w.runs();
  if ((await w.op("start", (c) => c.start(w.container, { environment: LONG }))) === undefined)
    return settle(w);
  await w.waitRuns(before + 1);
  await sleep(w.rng.int(0, 100));
  await w.op("stop", (c) => c.stop(w.container, 1));
};

const shortRun: Op = async (w) => {
  const exitsBefore = w.run.ledger.exitsOf(w.container);
  const environment = { STRESS_SLEEP: `0.0${w.rng.int(0, 9)}`, STRESS_CODE: String(w.rng.int(0, 3)) };
  if ((await w.op("start", (c) => c.start(w.container, { environment }))) === undefined) return settle(w);
  const seen = await w.run.watcher.waitFor(() => w.run.ledger.exitsOf(w.container) > exitsBefore, 15_000);
  if (!seen) w.run.errors.add("harness: no exit notification within 15 s");
};

const prepareStart: Op = async (w) => {
  const before = await w.runs();
  if ((await w.op("prepare", (c) => c.prepare(w.container))) === undefined) return settle(w);
  await sleep(w.rng.int(0, 50));
  if ((await w.op("start", (c) => c.start(w.container, { environment: LONG }))) === undefined)
    return settle(w);
  await w.waitRuns(before + 1);
  await w.op("stop", (c) => c.stop(w.container, 1));
};

const suspendResume: Op = async (w) => {
  const before = await w.runs();
  if ((await w.op("start", (c) => c.start(w.container, { environment: LONG }))) === undefined)
    return settle(w);
  await w.waitRuns(before + 1);
  for (let i = w.rng.int(1, 5); i > 0; i--) {
    await w.op("pause", (c) => c.pause(w.container));
    await w.op("resume", (c) => c.resume(w.container));
    await w.op("suspend", (c) => c.suspend(w.container, { maxSleepMs: w.rng.int(5, 100) }));
    await w.op("power", (c) => c.power(w.container));
  }
  await w.op("stop", (c) => c.stop(w.container, 1));
};

const mountUmount: Op = async (w) => {
  for (let i = w.rng.int(1, 5); i > 0; i--) {
    const results = await w.op("umount", (c) => c.umount([w.container]));
    for (const r of results?.value ?? [])
      if (r.type === "error") w.run.errors.add(`umount: error:${r.error.type}`);
    const mounted = await w.op("mount", (c) => c.mount([w.container]));
    for (const r of mounted?.value ?? [])
      if (r.type === "error") w.run.errors.add(`mount: error:${r.error.type}`);
  }
};

const installUninstall: Op = async (w) => {
  const file = w.run.daemon.stressPackages.get(w.container)!;
  const npk = await readFile(file);
  await w.op("uninstall", (c) => c.uninstall(w.container));
  const installed = await w.op("install", (c) => c.install("default", npk.length, npk));
  if (installed === undefined) {
    // Whatever happened, the container must be installed again for the next op.
    await w.op("install", (c) => c.install("default", npk.length, npk));
  }
};

const MODE_OPS: Record<StressMode, readonly (readonly [Op, number])[]> = {
  "start-stop": [
    [startStop, 1],
    [shortRun, 1],
  ],
  "install-uninstall": [[installUninstall, 1]],
  "mount-umount": [[mountUmount, 1]],
  "suspend-resume": [[suspendResume, 1]],
  "prepare-start": [[prepareStart, 1]],
  monkey: [
    [startStop, 3],
    [shortRun, 3],
    [prepareStart, 2],
    [suspendResume, 2],
    [mountUmount, 1],
    [installUninstall, 1],
  ],
};

async function workerLoop(w: WorkerContext): Promise<void> {
  const ops = MODE_OPS[w.run.options.mode];
  while (!w.run.stopping) {
    await w.rng.weighted(ops)(w);
  }
  w.client?.close();
}

// ------------------------------------------------------------------------------------------
// Monkey: chaos on the example containers, and hostile clients

async function chaosLoop(w: WorkerContext): Promise<void> {
  const r = w.rng;
  const any = (): string => r.pick([...EXAMPLES_TO_RUN, "message:0.0.1", "httpd-idle:0.0.1"]);
  const actions: (readonly [() => Promise<unknown>, number])[] = [
    [() => w.op("start", (c) => c.start(r.pick(EXAMPLES_TO_RUN))), 4],
    [() => w.op("stop", (c) => c.stop("httpd:0.0.1", 1)), 2],
    [() => w.op("kill", (c) => c.kill("httpd:0.0.1", r.pick([9, 15]))), 1],
    [() => w.op("inspect", (c) => c.inspect(any())), 2],
    [() => w.op("logs", (c) => c.logs(any(), { lines: r.int(1, 100) })), 1],
    [() => w.op("list", (c) => c.list()), 1],
    [() => w.op("repositories", (c) => c.repositories()), 1],
    [() => w.op("health", (c) => c.health()), 1],
    [() => w.op("mount", (c) => c.mount(["message:0.0.1", "hello-world:0.0.1"])), 1],
    [() => w.op("umount", (c) => c.umount(["message:0.0.1", "hello-world:0.0.1"])), 1],
    [() => w.op("prepare", (c) => c.prepare("hello-world:0.0.1")), 1],
    [() => w.op("pause", (c) => c.pause("httpd:0.0.1")), 1],
    [() => w.op("resume", (c) => c.resume("httpd:0.0.1")), 1],
    [() => w.op("power", (c) => c.power("httpd:0.0.1")), 1],
    [() => w.op("start", (c) => c.start("no-such-container:1.0.0")), 1],
    [() => w.op("uninstall", (c) => c.uninstall("no-such-container:1.0.0")), 1],
  ];
  while (!w.run.stopping) {
    await r.weighted(actions)();
    await sleep(r.int(0, 50));
  }
  w.client?.close();
}

async function hostileLoop(run: Run, rng: Rng): Promise<void> {
  while (!run.stopping) {
    if (run.daemonDown) await run.daemonDown;
    const kind = rng.pick(HOSTILE_KINDS);
    run.ops.add(`hostile:${kind}`);
    try {
      await runHostile(kind, run.daemon.socketPath, rng, run.hostile);
    } catch (e) {
      run.errors.add(`hostile ${kind}: ${errorKind(e)}`);
    }
    await sleep(rng.int(100, 1000));
  }
}

// ------------------------------------------------------------------------------------------
// Measurement, restarts, report

async function sampleLoop(run: Run): Promise<void> {
  while (!run.stopping) {
    const [proc, loop] = await Promise.all([run.daemon.sample(), run.daemon.loopDelay()]);
    if (loop && !Number.isNaN(loop.maxMs)) {
      run.loopMaxMs = Math.max(run.loopMaxMs, loop.maxMs);
      run.loopP99Ms = loop.p99Ms;
      run.loopResolutionMs = loop.resolutionMs;
      run.loopWindowMaxMs = maxOf(run.loopWindowMaxMs, loop.recentMaxMs);
      if (Date.now() - run.loadStartedAt >= 20_000)
        run.loopLoadMaxMs = maxOf(run.loopLoadMaxMs, loop.recentMaxMs);
    }
    if (proc) {
      run.series.push({
        atMs: Date.now() - run.startedAt,
        rssBytes: proc.rssBytes,
        fds: proc.fds,
        loopMaxMs: loop?.maxMs ?? Number.NaN,
      });
    }
    await sleep(SAMPLE_EVERY_MS);
  }
}

/** The larger, where NaN means "no reading yet". */
const maxOf = (a: number, b: number): number => (Number.isNaN(a) ? b : Number.isNaN(b) ? a : Math.max(a, b));

async function killLoop(run: Run, everyMs: number): Promise<void> {
  for (;;) {
    await sleep(everyMs);
    if (run.stopping) return;
    await restartDaemon(run, true);
  }
}

/** kill -9 (when asked) and start again; workers wait meanwhile. */
async function restartDaemon(run: Run, kill: boolean): Promise<void> {
  let up!: () => void;
  run.daemonDown = new Promise((resolve) => (up = resolve));
  try {
    // The last reading of the instance going away counts too.
    const loop = await run.daemon.loopDelay();
    if (loop && !Number.isNaN(loop.maxMs)) run.loopMaxMs = Math.max(run.loopMaxMs, loop.maxMs);
    if (kill) {
      await run.daemon.kill9();
      run.kills++;
    }
    for (let attempt = 1; ; attempt++) {
      try {
        await run.daemon.start();
        return;
      } catch (e) {
        run.restartFailures++;
        if (attempt >= 10) throw e;
        await sleep(500);
      }
    }
  } finally {
    run.daemonDown = undefined;
    up();
  }
}

/** Restarts a daemon that died by itself (a finding: counted and reported). */
async function watchdog(run: Run): Promise<void> {
  while (!run.stopping) {
    await Promise.race([run.daemon.exitedPromise, sleep(1000, undefined, { ref: false })]);
    if (run.stopping) return;
    if (run.daemonDown || run.daemon.running) {
      await sleep(100); // down on purpose (its exit promise has resolved), or up
      continue;
    }
    process.stdout.write(`[${run.elapsed}] skiffd exited unexpectedly; last log:\n${run.daemon.recentLog}\n`);
    await restartDaemon(run, false);
  }
}

function report(run: Run, final: boolean): void {
  const list = final ? run.list.overall() : run.list.takeWindow();
  const last = run.series[run.series.length - 1];
  const out = [
    `[${run.elapsed}] ops ${run.ops.total} (${run.ops.format(8)})`,
    `  errors ${run.errors.total} (${run.errors.format(8)})`,
    `  list ${final ? "whole run" : "window"}: n ${list.count} p50 ${fmtMs(list.p50)} p99 ${fmtMs(list.p99)} max ${fmtMs(list.max)}; failed ${run.listFailures}; over ${LIST_GOAL_MS} ms so far ${run.listOverGoal}`,
    `  daemon loop: longest gap ${final ? `${fmtMs(run.loopMaxMs)} whole run` : `${fmtMs(run.loopWindowMaxMs)} recent`} (timer ${fmtMs(run.loopResolutionMs)}; bare node process ${fmtMs(final ? run.baselineMaxMs : run.baselineWindowMaxMs)}), p99 ${fmtMs(run.loopP99Ms)}; rss ${last ? fmtMiB(last.rssBytes) : "-"}, fds ${last?.fds ?? "-"}; kills ${run.kills}, unexpected exits ${run.daemon.unexpectedExits}`,
  ];
  process.stdout.write(`${out.join("\n")}\n`);
  run.loopWindowMaxMs = Number.NaN;
  run.baselineWindowMaxMs = Number.NaN;
}

async function drain(run: Run, containers: string[]): Promise<void> {
  // Let every instance that started reach its first command, then stop what still runs.
  await sleep(1000);
  const client = await connect(run.daemon.url, { timeout: REQUEST_TIMEOUT_MS });
  try {
    for (const container of [...containers, ...EXAMPLES_TO_RUN]) {
      const data = await client.inspect(container).catch(() => undefined);
      if (data?.process)
        await client.stop(container, 2).catch((e: unknown) => run.errors.add(`drain stop: ${errorKind(e)}`));
    }
  } finally {
    client.close();
  }
  // Exits still on their way (announced after a restart, or after a stop's reply).
  const truth = async (): Promise<Map<string, number>> =>
    new Map(
      await Promise.all(
        containers.map(async (c) => [c, await runsOf(run.daemon, c.split(":")[0]!)] as const),
      ),
    );
  const want = await truth();
  await run.watcher.waitFor(() => containers.every((c) => run.ledger.exitsOf(c) >= want.get(c)!), 20_000);
}

function printFinal(run: Run, account: ExitAccount, leaks: Leaks | undefined, stopped: string): void {
  const o = run.options;
  const lines: string[] = [];
  const list = run.list.overall();
  lines.push(
    "",
    `== stress result: mode ${o.mode}, ${fmtDuration(o.durationMs)}, containers ${o.containers}, seed ${o.seed}${
      o.killDaemonEveryMs ? `, kill -9 every ${fmtDuration(o.killDaemonEveryMs)}` : ""
    }`,
    `operations: ${run.ops.total} — ${run.ops.format(40)}`,
    `errors: ${run.errors.total} — ${run.errors.format(40)}`,
  );
  if (run.hostile.total > 0) lines.push(`hostile outcomes: ${run.hostile.format(40)}`);
  lines.push(
    `notifications: ${run.notifications.format(20)}; lagged ${run.watcher.lagged} (missed ${run.watcher.missed}); watcher connections ${run.watcher.connections}`,
    `list latency (separate client, every ${LIST_INTERVAL_MS} ms): n ${list.count}, p50 ${fmtMs(list.p50)}, p99 ${fmtMs(list.p99)}, max ${fmtMs(list.max)}; over ${LIST_GOAL_MS} ms: ${run.listOverGoal}; failed (daemon down) ${run.listFailures}`,
    `daemon event loop: longest gap between ticks ${fmtMs(run.loopMaxMs)} over the whole run, ${fmtMs(run.loopSetupMaxMs)} by the end of the setup (${run.daemon.stressPackages.size + 7} installs), ${fmtMs(run.loopLoadMaxMs)} under load (from 20 s after the setup); p99 ${fmtMs(run.loopP99Ms)}. A ${fmtMs(run.loopResolutionMs)} timer: the longest stall lies between a gap minus the timer and the gap.`,
    `baseline: the same timer in a bare node process on this machine: longest gap ${fmtMs(run.baselineMaxMs)} (the machine's share of a stall); the harness's own loop: ${fmtMs(run.harnessLoop.max / 1e6)}`,
    "daemon rss / fds over time:",
  );
  for (const s of thin(run.series, 11)) {
    lines.push(
      `  ${fmtDuration(s.atMs).padStart(8)}  rss ${fmtMiB(s.rssBytes).padStart(10)}  fds ${String(s.fds).padStart(5)}`,
    );
  }
  lines.push(
    `daemon: kill -9 ${run.kills}, restart failures ${run.restartFailures}, unexpected exits ${run.daemon.unexpectedExits}, final stop ${stopped} (${run.daemon.lastExit}, ${
      run.daemon.shutdownCompleted
        ? "shutdown complete"
        : 'NO "shutdown complete" logged: the shutdown did not finish'
    })`,
    `daemon logged (warn and above): ${
      [...run.daemon.loggedErrors]
        .sort((a, b) => b[1] - a[1])
        .slice(0, 10)
        .map(([m, n]) => `${n}× ${m}`)
        .join("; ") || "none"
    }`,
    `exits (stress containers): instances ran ${account.instances}, started notifications ${account.startedNotifications}, exit notifications ${account.exitNotifications}, of which reason error ${account.errorExits} (a start that failed in the runtime ends with one, its instance never ran)`,
    `  lost ${account.lost}, duplicated by count ${account.duplicatedByCount}, duplicated by instance id ${
      account.exitsWithId === 0 ? "n/a (no instance id in exit notifications)" : account.duplicatedById
    }`,
  );
  if (leaks) {
    const n = (label: string, items: unknown[]): string => `${label} ${items.length}`;
    lines.push(
      `leaks after shutdown: ${n("mounts", leaks.mounts)}, ${n("loop devices", leaks.loopDevices)}, ${n("cgroups", leaks.cgroups)}, ${n("monitor processes", leaks.processes)}, ${n("run_dir files", leaks.runFiles)}, ${n("monitor sockets", leaks.monitorSockets)}`,
    );
    for (const item of [
      ...leaks.mounts,
      ...leaks.loopDevices,
      ...leaks.cgroups,
      ...leaks.runFiles,
      ...leaks.monitorSockets,
    ].slice(0, 15)) {
      lines.push(`  ${item}`);
    }
    for (const p of leaks.processes.slice(0, 5)) lines.push(`  pid ${p.pid}: ${p.cmdline.slice(0, 160)}`);
    if (Object.values(leaks).some((items: unknown[]) => items.length > 0)) {
      lines.push("daemon log, last lines:", run.daemon.recentLog);
    }
  }
  process.stdout.write(`${lines.join("\n")}\n`);
}

async function installAll(run: Run): Promise<string[]> {
  const client = await connect(run.daemon.url, { timeout: REQUEST_TIMEOUT_MS });
  try {
    const files = (await readdir(EXAMPLE_BUILD))
      .filter((f) => f.endsWith(".npk"))
      .map((f) => join(EXAMPLE_BUILD, f));
    for (const file of [...files, ...run.daemon.stressPackages.values()]) {
      const npk = await readFile(file);
      await client.install("default", npk.length, npk);
    }
    return files;
  } finally {
    client.close();
  }
}

/**
 * The baseline of the loop figures: a bare node process on the same machine with the same 10 ms
 * drift timer, printing its longest gap every second. What it sees is the machine's share (CPU
 * starvation by other work); what the daemon sees beyond it is the daemon's own.
 */
const BASELINE_SCRIPT = `let last = performance.now(), max = 0;
setInterval(() => { const now = performance.now(); max = Math.max(max, now - last); last = now; }, 10);
setInterval(() => { process.stdout.write(max.toFixed(3) + "\\n"); max = 0; }, 1000);`;

function startBaseline(run: Run): { stop: () => void } {
  const child = spawn(process.execPath, ["-e", BASELINE_SCRIPT], { stdio: ["ignore", "pipe", "ignore"] });
  let partial = "";
  child.stdout.setEncoding("utf8");
  child.stdout.on("data", (chunk: string) => {
    const lines = (partial + chunk).split("\n");
    partial = lines.pop()!;
    for (const line of lines) {
      const gap = Number(line);
      if (Number.isNaN(gap)) continue;
      run.baselineMaxMs = maxOf(run.baselineMaxMs, gap);
      run.baselineWindowMaxMs = maxOf(run.baselineWindowMaxMs, gap);
    }
  });
  return { stop: () => child.kill("SIGKILL") };
}

function startProber(run: Run): { stop: () => Promise<void> } {
  const worker = new Worker(new URL("./stress-prober.js", import.meta.url), {
    workerData: { url: run.daemon.url, intervalMs: LIST_INTERVAL_MS } satisfies ProberConfig,
  });
  worker.on("message", (batch: ProberBatch) => {
    for (const s of batch.samples) {
      run.list.record(s);
      if (s > LIST_GOAL_MS) run.listOverGoal++;
    }
    run.listFailures += batch.failures;
  });
  const exited = new Promise<void>((resolve) => worker.once("exit", () => resolve()));
  return {
    stop: async () => {
      worker.postMessage("stop");
      await Promise.race([exited, sleep(35_000, undefined, { ref: false }).then(() => worker.terminate())]);
    },
  };
}

async function main(): Promise<number> {
  let options: StressOptions;
  try {
    options = parseStressArgs(process.argv.slice(2), () => randomInt(2 ** 32 - 1));
  } catch (e) {
    if (e instanceof StressUsageError) {
      process.stderr.write(`stress: ${e.message}\n${STRESS_USAGE}\n`);
      return 2;
    }
    throw e;
  }
  if (!(await stat(EXAMPLE_BUILD).catch(() => undefined))) {
    process.stderr.write(`stress: ${EXAMPLE_BUILD} is missing: run examples/build.sh first\n`);
    return 2;
  }
  const rng = new Rng(options.seed);
  const daemon = await StressDaemon.create();
  const run = new Run(options, daemon, rng);
  process.stdout.write(
    `stress: mode ${options.mode} for ${fmtDuration(options.durationMs)}, ${options.containers} containers, seed ${options.seed}, dir ${daemon.dir}, cgroup ${daemon.cgroup}\n`,
  );
  let interrupted = false;
  const onSignal = (): void => {
    interrupted = true;
    run.stopping = true;
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    const containers = await daemon.packStressContainers(options.containers);
    await daemon.start();
    await run.watcher.start();
    await installAll(run);
    run.loopSetupMaxMs = (await daemon.loopDelay())?.maxMs ?? Number.NaN;
    run.loadStartedAt = Date.now();
    const prober = startProber(run);
    const baseline = startBaseline(run);
    const tasks: Promise<void>[] = [sampleLoop(run), watchdog(run)];
    const workers = containers.map((c, i) => new WorkerContext(run, c, new Rng(options.seed + i + 1)));
    tasks.push(...workers.map((w) => workerLoop(w)));
    if (options.mode === "monkey") {
      tasks.push(chaosLoop(new WorkerContext(run, "chaos", new Rng(options.seed + 1000))));
      tasks.push(
        hostileLoop(run, new Rng(options.seed + 2000)),
        hostileLoop(run, new Rng(options.seed + 2001)),
      );
    }
    const killer =
      options.killDaemonEveryMs === undefined ? undefined : killLoop(run, options.killDaemonEveryMs);
    const reporter = setInterval(() => report(run, false), options.reportEveryMs);
    const deadline = Date.now() + options.durationMs;
    while (!run.stopping && Date.now() < deadline) await sleep(Math.min(250, deadline - Date.now()));
    run.stopping = true;
    clearInterval(reporter);
    process.stdout.write(`[${run.elapsed}] stopping: waiting for the workers' last operations\n`);
    await killer;
    await Promise.all(tasks);
    await prober.stop();
    baseline.stop();
    if (!daemon.running) await restartDaemon(run, false);
    await drain(run, containers);
    const truth = new Map(
      await Promise.all(containers.map(async (c) => [c, await runsOf(daemon, c.split(":")[0]!)] as const)),
    );
    const account = run.ledger.reconcile(truth);
    run.watcher.stop();
    const stopped = await daemon.stop();
    const leaks = await daemon.findLeaks();
    report(run, true);
    printFinal(run, account, leaks, stopped);
    return interrupted ? 130 : 0;
  } catch (e) {
    process.stderr.write(`stress: failed: ${(e as Error).stack ?? String(e)}\n${daemon.recentLog}\n`);
    return 1;
  } finally {
    run.stopping = true;
    run.watcher.stop();
    await daemon.cleanup();
  }
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`stress: fatal: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  },
);
