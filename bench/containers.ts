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
import { once } from "node:events";
import { execFileSync } from "node:child_process";
import { chmod, mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { constants, openSync } from "node:fs";
import { Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { connect, type Client } from "../src/client/index.js";
import { bundleDirOf } from "../src/daemon/oci/bundle.js";
import { ContainerHarness } from "../test/helpers/containers.js";
import { RuncBaseline } from "./runc-baseline.js";
import { ms, percentile, versus } from "./stats.js";

const RUNS = 30;
const LOOP_MS = 10_000;
const FLEET = 100;
const CLIENTS = 10;

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
    execFileSync("mkfifo", ["-m", "0666", path]);
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

/** Memory of a process and all its descendants. */
async function treeMemory(pid: number): Promise<Memory> {
  const own = await memoryOf(pid);
  const children = (await readFile(`/proc/${pid}/task/${pid}/children`, "utf8")).trim();
  for (const child of children ? children.split(" ").map(Number) : []) {
    const m = await treeMemory(child);
    own.rss += m.rss;
    own.pss += m.pss;
  }
  return own;
}

async function parentOf(pid: number): Promise<{ pid: number; comm: string }> {
  const ppid = Number(/^PPid:\s+(\d+)/m.exec(await readFile(`/proc/${pid}/status`, "utf8"))?.[1]);
  return { pid: ppid, comm: (await readFile(`/proc/${ppid}/comm`, "utf8")).trim() };
}

const p50p99 = (samples: number[]): string =>
  `p50 ${ms(percentile(samples, 50))} p99 ${ms(percentile(samples, 99))}`;

async function timed(body: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await body();
  return performance.now() - start;
}

/** Runs `work(i)` for i in [0, count) on `workers` sequential workers. */
async function inWorkers(count: number, workers: number, work: (i: number, worker: number) => Promise<void>) {
  await Promise.all(
    Array.from({ length: workers }, async (_, w) => {
      for (let i = w; i < count; i += workers) await work(i, w);
    }),
  );
}

interface Setup {
  h: ContainerHarness;
  fifo: ArrivalFifo;
  runc: RuncBaseline;
  hello: string;
  probe: string;
  done: string;
  fleet: string[];
  imageOf(container: string): string;
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
    const child = runc.run(`hello-${i}`, bundle);
    const exited = once(child, "exit");
    const tRunc = await runcArrival;
    const [code] = (await exited) as [number | null];
    if (code !== 0) throw new Error(`bench: runc run exited with ${code}`);
    if (i === 0) continue;
    started.push(tStarted - t0);
    output.push(tOutput - t0);
    baseline.push(tRunc - r0);
  }
  const runcFigure = `runc run -> first output ${p50p99(baseline)}`;
  const ratio = (s: number[]) => percentile(s, 50) / percentile(baseline, 50);
  return [
    versus(
      `cold start, start -> started notification (${RUNS} runs)`,
      p50p99(started),
      runcFigure,
      ratio(started),
    ),
    versus(
      `cold start, start -> first output line (${RUNS} runs)`,
      p50p99(output),
      runcFigure,
      ratio(output),
    ),
  ];
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
    const child = runc.run(id, bundle);
    const exited = once(child, "exit");
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

async function throughput({ h, runc, done }: Setup): Promise<string[]> {
  const bundle = await runc.bundle("true", ["/bin/true"]);
  let starts = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < LOOP_MS) {
    const from = h.notifications.length;
    await h.client.start(done);
    await h.waitForExit(done, from);
    starts++;
  }
  const skiffRate = starts / ((performance.now() - t0) / 1000);
  let runs = 0;
  const r0 = performance.now();
  while (performance.now() - r0 < LOOP_MS) {
    await once(runc.run(`true-${runs}`, bundle), "exit");
    runs++;
  }
  const runcRate = runs / ((performance.now() - r0) / 1000);
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

async function footprint(s: Setup): Promise<string[]> {
  const { h, runc, fleet } = s;
  const clients: Client[] = await Promise.all(Array.from({ length: CLIENTS }, () => connect(h.url)));
  try {
    const mounted = await h.client.mount(fleet);
    const failed = mounted.find((r) => r.type === "error");
    if (failed) throw new Error(`bench: mount failed: ${JSON.stringify(failed)}`);
    const stopAll = () =>
      inWorkers(FLEET, CLIENTS, (i, w) => clients[w]!.stop(fleet[i]!).then(() => undefined));

    const daemonBefore = (await memoryOf(h.daemonPid)).rss;
    const skiffSequential = await timed(async () => {
      for (const c of fleet) await h.client.start(c);
    });
    const daemonGrowth = (await memoryOf(h.daemonPid)).rss - daemonBefore;
    const monitors: Memory = { rss: 0, pss: 0 };
    const skiffContainers: Memory = { rss: 0, pss: 0 };
    for (const c of fleet) {
      const pid = (await h.client.inspect(c)).process!.pid;
      const monitor = await parentOf(pid);
      if (monitor.comm !== "skiff-monitor")
        throw new Error(`bench: parent of ${c}'s init is ${monitor.comm}`);
      const [m, t] = await Promise.all([memoryOf(monitor.pid), treeMemory(pid)]);
      monitors.rss += m.rss;
      monitors.pss += m.pss;
      skiffContainers.rss += t.rss;
      skiffContainers.pss += t.pss;
    }
    await stopAll();
    const skiffParallel = await timed(() =>
      inWorkers(FLEET, CLIENTS, (i, w) => clients[w]!.start(fleet[i]!)),
    );
    await stopAll();

    const bundles = await Promise.all(
      fleet.map((c, i) => runc.bundle(`idle-${i}`, ["/bin/sleep", "1000"], s.imageOf(c))),
    );
    const pids: number[] = [];
    const runcSequential = await timed(async () => {
      for (let i = 0; i < FLEET; i++) pids.push(await runc.runDetached(`idle-${i}`, bundles[i]!));
    });
    const runcContainers: Memory = { rss: 0, pss: 0 };
    for (const pid of pids) {
      const t = await treeMemory(pid);
      runcContainers.rss += t.rss;
      runcContainers.pss += t.pss;
    }
    const deleteAll = () => inWorkers(FLEET, CLIENTS, (i) => runc.deleteForce(`idle-${i}`));
    await deleteAll();
    const runcParallel = await timed(() =>
      inWorkers(FLEET, CLIENTS, (i) => runc.runDetached(`idle-${i}`, bundles[i]!).then(() => undefined)),
    );
    await deleteAll();

    const seconds = (t: number) => `${(t / 1000).toFixed(2)} s (${(t / FLEET).toFixed(1)} ms each)`;
    const totals = (m: "rss" | "pss") => monitors[m] + daemonGrowth + skiffContainers[m];
    return [
      versus(
        `start ${FLEET} sleeping containers, sequential requests`,
        seconds(skiffSequential),
        `${FLEET} x runc run -d ${seconds(runcSequential)}`,
        skiffSequential / runcSequential,
      ),
      versus(
        `start ${FLEET} sleeping containers, ${CLIENTS} clients in parallel`,
        seconds(skiffParallel),
        `runc run -d from ${CLIENTS} workers ${seconds(runcParallel)}`,
        skiffParallel / runcParallel,
      ),
      ...(["rss", "pss"] as const).map((m) =>
        versus(
          `${FLEET} sleeping containers, ${m.toUpperCase()} sum of monitors + container processes + daemon RSS growth`,
          kib(totals(m)),
          `runc run -d, container processes ${kib(runcContainers[m])}`,
          totals(m) / runcContainers[m],
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
    runc = await RuncBaseline.fromBundle(bundleDirOf({ runDir: join(h.dir, "state", "run") }, probe));
    await h.client.stop(probe);

    const setup: Setup = {
      h,
      fifo,
      runc,
      hello,
      probe,
      done,
      fleet,
      imageOf: (c) => join(h.dir, "state", "run", "images", c.replace(":", "-")),
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
