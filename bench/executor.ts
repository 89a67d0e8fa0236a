/**
 * Executor benchmarks against a real `skiffd` (test/helpers/containers.ts), each beside a baseline
 * measured in the same run:
 * - prepared start: `start` of a prepared container -> `started` notification and -> first output
 *   line, vs a cold `start` of the same container, `runc start` of a `runc create`d container and
 *   `runc run` (bundles from the daemon's own, bench/runc-baseline.ts). Output is a line written to a
 *   host fifo bind-mounted into the container, timed on its arrival here.
 * - sustained start -> exit -> start of `/bin/true` with `prepare: true` (the next instance is prepared
 *   after each exit), vs the same without it (cold starts), in alternating one-second slices.
 * - 100 sleeping containers prepared, then started (1000 is too heavy for the CI machines here): total
 *   time and memory per container, vs 100 `runc run -d`.
 */
import { execFile, execFileSync, spawn } from "node:child_process";
import { constants, openSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { once } from "node:events";
import { Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { connect, type Client } from "../src/client/index.js";
import { ContainerHarness } from "../test/helpers/containers.js";
import { bundleOf, NotificationClock, p50p99, ratio50, timed } from "./power.js";
import { RuncBaseline } from "./runc-baseline.js";
import { versus } from "./stats.js";

const execFileAsync = promisify(execFile);
const RUNS = 30;
const SLICES = 5;
const FLEET = 100;
const CLIENTS = 10;

/** A host fifo the containers write a line to; `next()` resolves with the arrival time. */
class ArrivalFifo {
  private pending: ((at: number) => void) | undefined;

  constructor(private readonly socket: Socket) {
    socket.on("data", () => {
      const at = performance.now();
      const wake = this.pending;
      this.pending = undefined;
      wake?.(at);
    });
  }

  /** Creates `<dir>/fifo`, writable by the containers' uid; opened read-write, so never at EOF. */
  static create(dir: string): ArrivalFifo {
    const path = join(dir, "fifo");
    execFileSync("mkfifo", ["-m", "0666", path]);
    const fd = openSync(path, constants.O_RDWR | constants.O_NONBLOCK);
    return new ArrivalFifo(new Socket({ fd, readable: true, writable: false }));
  }

  /** Call before triggering the write. */
  next(): Promise<number> {
    const arrival = new Promise<number>((resolve) => (this.pending = resolve));
    const timeout = sleep(20_000, undefined, { ref: false }).then(() => {
      throw new Error("bench: no output arrived on the fifo");
    });
    return Promise.race([arrival, timeout]);
  }

  close(): void {
    this.socket.destroy();
  }
}

/** runc with a private root, for create/start (RuncBaseline drives `run` only). */
class RuncCli {
  private readonly ids = new Set<string>();
  constructor(private readonly root: string) {}

  async create(id: string, bundle: string): Promise<void> {
    this.ids.add(id);
    // Not execFile: the created container inherits runc's stdio, so pipes would never reach EOF.
    const child = spawn("runc", ["--root", this.root, "create", "--bundle", bundle, id], { stdio: "ignore" });
    const [code] = (await once(child, "exit")) as [number | null];
    if (code !== 0) throw new Error(`bench: runc create exited with ${code}`);
  }

  async start(id: string): Promise<void> {
    await execFileAsync("runc", ["--root", this.root, "start", id]);
  }

  async deleteForce(id: string): Promise<void> {
    await execFileAsync("runc", ["--root", this.root, "delete", "--force", id]);
    this.ids.delete(id);
  }

  async cleanup(): Promise<void> {
    for (const id of this.ids) await this.deleteForce(id).catch(() => undefined);
  }
}

interface Setup {
  h: ContainerHarness;
  clock: NotificationClock;
  fifo: ArrivalFifo;
  runc: RuncBaseline;
  runcCli: RuncCli;
}

async function startLines({ h, clock, fifo, runc, runcCli }: Setup, hello: string): Promise<string[]> {
  const bundle = await runc.bundle("hello", ["/bin/sh", "-c", "echo up > /bench/fifo"]);
  const started = (from: number) =>
    clock.next((n) => n.type === "started" && n.container === hello, from).then((s) => s.at);
  const exited = (from: number) => clock.next((n) => n.type === "exit" && n.container === hello, from);
  const samples = {
    preparedStarted: [] as number[],
    preparedOutput: [] as number[],
    coldStarted: [] as number[],
    coldOutput: [] as number[],
    runcStart: [] as number[],
    runcRun: [] as number[],
  };
  // Interleaved, so that load from elsewhere hits all alike; run 0 warms up.
  for (let i = 0; i <= RUNS; i++) {
    await h.client.prepare(hello);
    let from = clock.mark;
    let arrival = fifo.next();
    let t0 = performance.now();
    let notified = started(from);
    await h.client.start(hello);
    const [preparedStarted, preparedOutput] = [(await notified) - t0, (await arrival) - t0];
    await exited(from);

    from = clock.mark;
    arrival = fifo.next();
    t0 = performance.now();
    notified = started(from);
    await h.client.start(hello);
    const [coldStarted, coldOutput] = [(await notified) - t0, (await arrival) - t0];
    await exited(from);

    const id = `hello-${h.id}-${i}`;
    await runcCli.create(id, bundle);
    arrival = fifo.next();
    t0 = performance.now();
    await runcCli.start(id);
    const runcStart = (await arrival) - t0;
    await runcCli.deleteForce(id);

    arrival = fifo.next();
    t0 = performance.now();
    const ran = runc.run(`${id}-run`, bundle);
    const runcRun = (await arrival) - t0;
    if ((await ran) !== 0) throw new Error("bench: runc run failed");
    if (i === 0) continue;
    samples.preparedStarted.push(preparedStarted);
    samples.preparedOutput.push(preparedOutput);
    samples.coldStarted.push(coldStarted);
    samples.coldOutput.push(coldOutput);
    samples.runcStart.push(runcStart);
    samples.runcRun.push(runcRun);
  }
  const s = samples;
  return [
    versus(
      `prepared start, start -> started notification (${RUNS} runs)`,
      p50p99(s.preparedStarted),
      `cold start -> started ${p50p99(s.coldStarted)}`,
      ratio50(s.preparedStarted, s.coldStarted),
    ),
    versus(
      `prepared start, start -> first output line (${RUNS} runs)`,
      p50p99(s.preparedOutput),
      `cold start -> first output ${p50p99(s.coldOutput)}`,
      ratio50(s.preparedOutput, s.coldOutput),
    ),
    versus(
      `prepared start, start -> first output line`,
      p50p99(s.preparedOutput),
      `runc start of a created container -> first output ${p50p99(s.runcStart)}`,
      ratio50(s.preparedOutput, s.runcStart),
    ),
    versus(
      `prepared start, start -> first output line`,
      p50p99(s.preparedOutput),
      `runc run -> first output ${p50p99(s.runcRun)}`,
      ratio50(s.preparedOutput, s.runcRun),
    ),
  ];
}

/**
 * Starts `container` and waits for its exit, again and again for `forMs`; returns [starts, ms]. With
 * `untilPrepared`, each start waits until `inspect` says the next instance is prepared: a start sent
 * while it is still `preparing` fails (a daemon race: the instance's mount and bundle are set up twice).
 */
async function startLoop(
  h: ContainerHarness,
  clock: NotificationClock,
  container: string,
  forMs: number,
  untilPrepared = false,
) {
  const t0 = performance.now();
  let starts = 0;
  while (performance.now() - t0 < forMs) {
    while (untilPrepared && (await h.client.inspect(container)).state !== "prepared") await sleep(1);
    const from = clock.mark;
    await h.client.start(container);
    await clock.next((n) => n.type === "exit" && n.container === container, from);
    starts++;
  }
  return [starts, performance.now() - t0] as const;
}

async function rateLines({ h, clock }: Setup, quick: string, cold: string): Promise<string[]> {
  const prepared = [0, 0];
  const baseline = [0, 0];
  for (let slice = 0; slice < SLICES; slice++) {
    const [n, t] = await startLoop(h, clock, quick, 1000, true);
    const [m, u] = await startLoop(h, clock, cold, 1000);
    prepared[0]! += n;
    prepared[1]! += t;
    baseline[0]! += m;
    baseline[1]! += u;
  }
  const rate = ([n, t]: number[]) => n! / (t! / 1000);
  return [
    versus(
      `start -> exit -> (prepared) -> start of /bin/true with prepare: true, ${SLICES} s`,
      `${rate(prepared).toFixed(1)} starts/s`,
      `cold starts ${rate(baseline).toFixed(1)} starts/s`,
      rate(prepared) / rate(baseline),
    ),
  ];
}

const rssKiB = async (pid: number): Promise<number> =>
  Number(/^VmRSS:\s+(\d+) kB/m.exec(await readFile(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0);

/** RSS of a process and all its descendants, KiB. */
async function treeRss(pid: number): Promise<number> {
  const children = (await readFile(`/proc/${pid}/task/${pid}/children`, "utf8")).trim();
  let total = await rssKiB(pid);
  for (const child of children ? children.split(" ").map(Number) : []) total += await treeRss(child);
  return total;
}

async function fleetLines({ h, runc }: Setup, fleet: string[]): Promise<string[]> {
  const clients: Client[] = await Promise.all(Array.from({ length: CLIENTS }, () => connect(h.url)));
  try {
    // The baseline first: its template's root is fleet[0]'s image, mounted now (the mount cache
    // keeps it while few other images were used) but released once 100 images have run.
    const bundle = await runc.bundle("fleet", ["/bin/sleep", "1000"]);
    const ids = fleet.map((_, i) => `fleet-${h.id}-${i}`);
    const pids: number[] = [];
    const runcMs = await timed(async () => {
      for (const id of ids) pids.push(await runc.runDetached(id, bundle));
    });
    let runcProcesses = 0;
    for (const pid of pids) runcProcesses += await treeRss(pid);
    for (const id of ids) await runc.deleteForce(id);

    const daemonBefore = await rssKiB(h.daemonPid);
    const prepareMs = await timed(async () => {
      for (const c of fleet) await h.client.prepare(c);
    });
    const startMs = await timed(async () => {
      for (const c of fleet) await h.client.start(c);
    });
    const daemonGrowth = (await rssKiB(h.daemonPid)) - daemonBefore;
    let monitors = 0;
    let processes = 0;
    for (const c of fleet) {
      const init = (await h.client.inspect(c)).process!.pid;
      const monitor = Number(/^PPid:\s+(\d+)/m.exec(await readFile(`/proc/${init}/status`, "utf8"))?.[1]);
      monitors += await rssKiB(monitor);
      processes += await treeRss(init);
    }
    await Promise.all(
      clients.map(async (client, w) => {
        for (let i = w; i < FLEET; i += CLIENTS) await client.stop(fleet[i]!);
      }),
    );

    const seconds = (t: number) => `${(t / 1000).toFixed(2)} s (${(t / FLEET).toFixed(1)} ms each)`;
    const perContainer = (kib: number) => `${(kib / FLEET).toFixed(0)} KiB/container`;
    const total = monitors + daemonGrowth + processes;
    return [
      versus(
        `${FLEET} sleeping containers (not 1000: too heavy here), prepare all then start all, sequential`,
        `${seconds(prepareMs + startMs)}: prepare ${seconds(prepareMs)}, start ${seconds(startMs)}`,
        `runc run -d ${seconds(runcMs)}`,
        (prepareMs + startMs) / runcMs,
      ),
      versus(
        `${FLEET} prepared-then-started containers, start alone`,
        seconds(startMs),
        `runc run -d ${seconds(runcMs)}`,
        startMs / runcMs,
      ),
      versus(
        `${FLEET} prepared-then-started containers, RSS: monitors + daemon growth + container processes`,
        perContainer(total),
        `runc run -d, container processes ${perContainer(runcProcesses)}`,
        total / runcProcesses,
      ),
      `  of which monitors ${perContainer(monitors)}, daemon RSS growth ${perContainer(daemonGrowth)},` +
        ` container processes ${perContainer(processes)}; runc run -d leaves no runc process resident`,
    ];
  } finally {
    for (const c of clients) c.close();
  }
}

export async function benchExecutor(): Promise<string[]> {
  const h = await ContainerHarness.create();
  const fifoDir = await mkdtemp(join(tmpdir(), "skiff-bench-executor-"));
  let fifo: ArrivalFifo | undefined;
  let clock: NotificationClock | undefined;
  let runc: RuncBaseline | undefined;
  const runcCli = new RuncCli(join(fifoDir, "runc"));
  try {
    await chmod(fifoDir, 0o755);
    fifo = ArrivalFifo.create(fifoDir);
    await mkdir(join(h.dir, "busybox", "bench"));
    const bind = `  /bench:\n    type: bind\n    host: ${fifoDir}\n    options: rw\n`;
    const hello = await h.add(h.name("hello"), "/bin/sh", ["-c", "echo up > /bench/fifo"], "", bind);
    const quick = await h.add(h.name("quick"), "/bin/true", [], "prepare: true\n");
    const cold = await h.add(h.name("cold"), "/bin/true", []);
    const fleet: string[] = [];
    for (let i = 0; i < FLEET; i++)
      fleet.push(await h.add(h.name(`idle${i}`), "/bin/sleep", ["1000"], "", bind));
    await h.startDaemon();
    clock = await NotificationClock.open(h.url);

    // The baseline's template: the bundle the daemon wrote for a running container.
    await h.client.start(fleet[0]!);
    runc = await RuncBaseline.fromBundle(await bundleOf(h.client, fleet[0]!));
    await h.client.stop(fleet[0]!);

    const setup: Setup = { h, clock, fifo, runc, runcCli };
    return [
      ...(await startLines(setup, hello)),
      ...(await rateLines(setup, quick, cold)),
      ...(await fleetLines(setup, fleet)),
    ];
  } finally {
    await runcCli.cleanup();
    await runc?.cleanup();
    clock?.close();
    fifo?.close();
    await h.close();
    await rm(fifoDir, { recursive: true, force: true });
  }
}
