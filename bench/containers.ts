/**
 * Running-container benchmarks against a real `skiffd` (test/helpers/containers.ts), each beside
 * plain runc measured in the same run on the bundle the daemon itself wrote (bench/runc-baseline.ts):
 * - cold start: `start` -> `started` notification and -> first output, vs `runc run` -> first
 *   output. Output is a line written to a host fifo bind-mounted into the container, timed on
 *   its arrival here (no log polling). The package is mounted already (one warm-up run).
 * - stop of a sleeping container that honours SIGTERM: request -> answer, vs `runc kill` + wait.
 * - start -> exit -> start of `/bin/true` for 10 s, vs `runc run` in a loop.
 * - 100 sleeping containers (packages mounted beforehand): time to start all, sequentially and
 *   from 10 clients, and memory, vs 100 `runc run -d`.
 */
import { execFileSync } from "node:child_process";
import { chmod, mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { constants, openSync } from "node:fs";
import { Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { connect, type Client } from "../src/client/index.js";
import { ContainerHarness } from "../test/helpers/containers.js";
import { RuncBaseline } from "./runc-baseline.js";
import { inWorkers, ms, percentile, timed, versus } from "./stats.js";

const RUNS = 30;
const LOOP_MS = 10_000;
const FLEET = 100;
const CLIENTS = 10;
/** Fleet rounds (skiff and runc alternating); the best of each is reported. */
const FLEET_ROUNDS = 2;

/** A host fifo the containers write a line to; resolves `next()` with the arrival time. */
class ArrivalFifo {
  private pending: ((at: number) => void) | undefined;

  private constructor(private readonly socket: Socket) {
    socket.on("data", () => {
      const at = performance.now();
      const wake = this.pending;
      this.pending = undefined;
      wake?.(at);
    });
  }

  /** Creates `<dir>/fifo`, writable by the containers' uid. Opened read-write: never at EOF. */
  static async create(dir: string): Promise<ArrivalFifo> {
    const path = join(dir, "fifo");
    execFileSync("mkfifo", ["-m", "0666", path], { stdio: ["ignore", "ignore", "pipe"] });
    const fd = openSync(path, constants.O_RDWR | constants.O_NONBLOCK);
    return new ArrivalFifo(new Socket({ fd, readable: true, writable: false }));
  }

  /** Call before triggering the write. */
  next(timeoutMs = 20_000): Promise<number> {
    const arrival = new Promise<number>((resolve) => (this.pending = resolve));
    return Promise.race([
      arrival,
      sleep(timeoutMs, undefined, { ref: false }).then(() => {
        throw new Error("bench: no output arrived on the fifo");
      }),
    ]);
  }

  close(): void {
    this.socket.destroy();
  }
}

const field = (text: string, name: string): number =>
  Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? 0);

interface Memory {
  rss: number;
  pss: number;
}

async function memoryOf(pid: number): Promise<Memory> {
  const [status, rollup] = await Promise.all([
    readFile(`/proc/${pid}/status`, "utf8"),
    readFile(`/proc/${pid}/smaps_rollup`, "utf8"),
  ]);
  return { rss: field(status, "VmRSS"), pss: field(rollup, "Pss") };
}

function add(into: Memory, m: Memory): void {
  into.rss += m.rss;
  into.pss += m.pss;
}

/** Memory of a process and all its descendants. */
async function treeMemory(pid: number): Promise<Memory> {
  const own = await memoryOf(pid);
  const children = (await readFile(`/proc/${pid}/task/${pid}/children`, "utf8")).trim();
  for (const child of children ? children.split(" ").map(Number) : []) add(own, await treeMemory(child));
  return own;
}

/** The skiff-monitor supervising a container (its init's parent) and the bundle it was given. */
async function monitorOf(
  h: ContainerHarness,
  container: string,
): Promise<{ init: number; pid: number; bundleDir: string }> {
  const init = (await h.client.inspect(container)).process!.pid;
  const pid = Number(/^PPid:\s+(\d+)/m.exec(await readFile(`/proc/${init}/status`, "utf8"))?.[1]);
  const args = (await readFile(`/proc/${pid}/cmdline`, "utf8")).split("\0");
  const bundleDir = args[args.indexOf("--bundle") + 1];
  if (!args[0]!.endsWith("skiff-monitor") || bundleDir === undefined)
    throw new Error(`bench: the parent of ${container}'s init is not a skiff-monitor: ${args.join(" ")}`);
  return { init, pid, bundleDir };
}

const p50p99 = (samples: number[]): string =>
  `p50 ${ms(percentile(samples, 50))} p99 ${ms(percentile(samples, 99))}`;

interface Setup {
  h: ContainerHarness;
  fifo: ArrivalFifo;
  runc: RuncBaseline;
  hello: string;
  probe: string;
  done: string;
  fleet: string[];
}

async function coldStart({ h, fifo, runc, hello }: Setup): Promise<string[]> {
  const bundle = await runc.bundle("hello", ["/bin/sh", "-c", "echo up > /bench/fifo"]);
  const started: number[] = [];
  const output: number[] = [];
  const baseline: number[] = [];
  // Interleaved, so that drift on the shared machine hits both alike; run 0 is the warm-up.
  for (let i = 0; i <= RUNS; i++) {
    const from = h.notifications.length;
    const arrival = fifo.next();
    const t0 = performance.now();
    const notified = h
      .waitFor((n) => n.type === "started" && n.container === hello, 20_000, from)
      .then(() => performance.now());
    await h.client.start(hello);
    const [tStarted, tOutput] = await Promise.all([notified, arrival]);
    await h.waitForExit(hello, from);

    const runcArrival = fifo.next();
    const r0 = performance.now();
    const exited = runc.run(`hello-${i}`, bundle);
    const tRunc = await runcArrival;
    const code = await exited;
    if (code !== 0) throw new Error(`bench: runc run exited with ${code}`);
    if (i === 0) continue;
    started.push(tStarted - t0);
    output.push(tOutput - t0);
    baseline.push(tRunc - r0);
  }
  const runcFigure = `runc run -> first output ${p50p99(baseline)}`;
  const ratio = (s: number[]) => percentile(s, 50) / percentile(baseline, 50);
  return (
    [
      ["started notification", started],
      ["first output line", output],
    ] as const
  ).map(([what, s]) =>
    versus(`cold start, start -> ${what} (${RUNS} runs)`, p50p99(s), runcFigure, ratio(s)),
  );
}

async function stopLatency({ h, fifo, runc, probe }: Setup): Promise<string[]> {
  const bundle = await runc.bundle("probe", ["/bin/sh", "-c", "echo up > /bench/fifo; exec sleep 1000"]);
  const skiff: number[] = [];
  const baseline: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const ready = fifo.next();
    await h.client.start(probe);
    await ready;
    await sleep(20); // past the exec of sleep
    let status;
    skiff.push(await timed(async () => (status = await h.client.stop(probe))));
    if (status!.type !== "signalled" || status!.signal !== 15)
      throw new Error(`bench: probe ended ${JSON.stringify(status)}`);

    const runcReady = fifo.next();
    const id = `probe-${i}`;
    const exited = runc.run(id, bundle);
    await runcReady;
    await sleep(20);
    baseline.push(await timed(() => Promise.all([runc.kill(id, "TERM"), exited])));
  }
  return [
    versus(
      `stop of a sleeping container (SIGTERM honoured), request -> answer (${RUNS} runs)`,
      p50p99(skiff),
      `runc kill TERM + wait for runc run ${p50p99(baseline)}`,
      percentile(skiff, 50) / percentile(baseline, 50),
    ),
  ];
}

/** Runs `once` repeatedly for `forMs`; returns how many runs and how long they took. */
async function loop(forMs: number, once: (n: number) => Promise<unknown>): Promise<[number, number]> {
  const t0 = performance.now();
  let n = 0;
  while (performance.now() - t0 < forMs) await once(n++);
  return [n, performance.now() - t0];
}

async function throughput({ h, runc, done }: Setup): Promise<string[]> {
  const bundle = await runc.bundle("true", ["/bin/true"]);
  const skiff = [0, 0];
  const baseline = [0, 0];
  // Alternating one-second slices, so that load from elsewhere hits both alike.
  for (let slice = 0; slice < LOOP_MS / 1000; slice++) {
    const [starts, skiffMs] = await loop(1000, async () => {
      const from = h.notifications.length;
      await h.client.start(done);
      await h.waitForExit(done, from);
    });
    const [runs, runcMs] = await loop(1000, async (n) => {
      const code = await runc.run(`true-${slice}-${n}`, bundle);
      if (code !== 0) throw new Error(`bench: runc run exited with ${code}`);
    });
    skiff[0]! += starts;
    skiff[1]! += skiffMs;
    baseline[0]! += runs;
    baseline[1]! += runcMs;
  }
  const skiffRate = skiff[0]! / (skiff[1]! / 1000);
  const runcRate = baseline[0]! / (baseline[1]! / 1000);
  return [
    versus(
      `start -> exit -> start of /bin/true for ${LOOP_MS / 1000} s`,
      `${skiffRate.toFixed(1)} starts/s`,
      `runc run loop ${runcRate.toFixed(1)} runs/s`,
      skiffRate / runcRate,
    ),
  ];
}

const kib = (total: number): string =>
  `${(total / 1024).toFixed(1)} MiB (${(total / FLEET).toFixed(0)} KiB/container)`;

/**
 * Skiff and runc rounds alternate (sequential, then parallel), so that load from elsewhere hits
 * both alike; times are the best of FLEET_ROUNDS. Memory is taken while the first sequential
 * round's containers all run.
 */
async function footprint({ h, runc, fleet }: Setup): Promise<string[]> {
  const clients: Client[] = await Promise.all(Array.from({ length: CLIENTS }, () => connect(h.url)));
  try {
    const mounted = await h.client.mount(fleet);
    const failed = mounted.find((r) => r.type === "error");
    if (failed) throw new Error(`bench: mount failed: ${JSON.stringify(failed)}`);
    const ids = fleet.map((_, i) => `idle-${i}`);
    const parallel = (work: (i: number, client: Client) => Promise<unknown>) =>
      timed(() => inWorkers(FLEET, CLIENTS, async (i, w) => void (await work(i, clients[w]!))));
    const stopAll = () => parallel((i, c) => c.stop(fleet[i]!));
    const deleteAll = () => parallel((i) => runc.deleteForce(ids[i]!));

    const monitors: Memory = { rss: 0, pss: 0 };
    const skiffContainers: Memory = { rss: 0, pss: 0 };
    const runcContainers: Memory = { rss: 0, pss: 0 };
    let daemonGrowth = 0;
    const bundles: string[] = [];
    const best = {
      skiffSequential: Infinity,
      runcSequential: Infinity,
      skiffParallel: Infinity,
      runcParallel: Infinity,
    };
    const keep = (k: keyof typeof best, ms: number) => (best[k] = Math.min(best[k], ms));
    for (let round = 0; round < FLEET_ROUNDS; round++) {
      const daemonBefore = (await memoryOf(h.daemonPid)).rss;
      keep(
        "skiffSequential",
        await timed(async () => {
          for (const c of fleet) await h.client.start(c);
        }),
      );
      if (round === 0) {
        daemonGrowth = (await memoryOf(h.daemonPid)).rss - daemonBefore;
        for (const [i, c] of fleet.entries()) {
          const monitor = await monitorOf(h, c);
          add(monitors, await memoryOf(monitor.pid));
          add(skiffContainers, await treeMemory(monitor.init));
          // The baseline runs each container on the image the daemon mounted for it.
          const root = await RuncBaseline.rootOf(monitor.bundleDir);
          bundles.push(await runc.bundle(ids[i]!, ["/bin/sleep", "1000"], root));
        }
      }
      await stopAll();

      const pids: number[] = [];
      keep(
        "runcSequential",
        await timed(async () => {
          for (const [i, id] of ids.entries()) pids.push(await runc.runDetached(id, bundles[i]!));
        }),
      );
      if (round === 0) for (const pid of pids) add(runcContainers, await treeMemory(pid));
      await deleteAll();

      keep("skiffParallel", await parallel((i, c) => c.start(fleet[i]!)));
      await stopAll();
      keep("runcParallel", await parallel((i) => runc.runDetached(ids[i]!, bundles[i]!)));
      await deleteAll();
    }
    const { skiffSequential, runcSequential, skiffParallel, runcParallel } = best;

    const seconds = (t: number) => `${(t / 1000).toFixed(2)} s (${(t / FLEET).toFixed(1)} ms each)`;
    const total = (m: keyof Memory) => monitors[m] + daemonGrowth + skiffContainers[m];
    return [
      versus(
        `start ${FLEET} sleeping containers, sequential requests (best of ${FLEET_ROUNDS})`,
        seconds(skiffSequential),
        `runc run -d ${seconds(runcSequential)}`,
        skiffSequential / runcSequential,
      ),
      versus(
        `start ${FLEET} sleeping containers, ${CLIENTS} clients in parallel (best of ${FLEET_ROUNDS})`,
        seconds(skiffParallel),
        `runc run -d from ${CLIENTS} workers ${seconds(runcParallel)}`,
        skiffParallel / runcParallel,
      ),
      ...(["rss", "pss"] as const).map((m) =>
        versus(
          `${FLEET} sleeping containers, ${m.toUpperCase()} sum of monitors + container processes + daemon RSS growth`,
          kib(total(m)),
          `runc run -d, container processes ${kib(runcContainers[m])}`,
          total(m) / runcContainers[m],
        ),
      ),
      `  of which supervision: monitors RSS ${kib(monitors.rss)}, PSS ${kib(monitors.pss)}; daemon RSS growth ${kib(daemonGrowth)}`,
      `  container processes (skiff-init + sleep): RSS ${kib(skiffContainers.rss)}, PSS ${kib(skiffContainers.pss)}` +
        ` (runc: ${kib(runcContainers.rss)}, ${kib(runcContainers.pss)}); runc run -d leaves no runc process resident`,
    ];
  } finally {
    for (const c of clients) c.close();
  }
}

export async function benchContainers(): Promise<string[]> {
  const h = await ContainerHarness.create();
  const fifoDir = await mkdtemp(join(tmpdir(), "skiff-bench-fifo-"));
  let fifo: ArrivalFifo | undefined;
  let runc: RuncBaseline | undefined;
  try {
    await chmod(fifoDir, 0o755);
    fifo = await ArrivalFifo.create(fifoDir);
    await mkdir(join(h.dir, "busybox", "bench"));
    const bind = `  /bench:\n    type: bind\n    host: ${fifoDir}\n    options: rw\n`;
    const hello = await h.add(h.name("hello"), "/bin/sh", ["-c", "echo up > /bench/fifo"], bind);
    const probe = await h.add(
      h.name("probe"),
      "/bin/sh",
      ["-c", "echo up > /bench/fifo; exec sleep 1000"],
      bind,
    );
    const done = await h.add(h.name("true"), "/bin/true", [], bind);
    const fleet: string[] = [];
    await inWorkers(
      FLEET,
      2,
      async (i) => void (fleet[i] = await h.add(h.name(`idle${i}`), "/bin/sleep", ["1000"], bind)),
    );
    await h.startDaemon();

    // The baseline's template: the bundle the daemon wrote for the running probe.
    const ready = fifo.next();
    await h.client.start(probe);
    await ready;
    runc = await RuncBaseline.fromBundle((await monitorOf(h, probe)).bundleDir);
    await h.client.stop(probe);

    const setup: Setup = {
      h,
      fifo,
      runc,
      hello,
      probe,
      done,
      fleet,
    };
    return [
      ...(await coldStart(setup)),
      ...(await stopLatency(setup)),
      ...(await throughput(setup)),
      ...(await footprint(setup)),
    ];
  } finally {
    await runc?.cleanup();
    fifo?.close();
    await h.close();
    await rm(fifoDir, { recursive: true, force: true });
  }
}
