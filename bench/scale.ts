/**
 * `npm run bench -- scale`: N containers (default 1000; `SKIFF_BENCH_SCALE=N` for fewer) against
 * one real `skiffd`, beside plain runc ×N on bundles the daemon itself wrote (bench/runc-baseline.ts:
 * same init, mounts, namespaces and cgroup setup, each on the image the daemon mounted for it).
 * Figures, each with its baseline and the target from issue 14:
 * - daemon start-up time and RSS with N packages installed vs 1 package: cost per package;
 * - N sequential starts, images not mounted yet (first mount of each): per container, first and
 *   last tenth (flatness), vs `runc run -d` ×N; the same with the images mounted; from 8 clients
 *   in parallel vs runc from 8 workers;
 * - with N running: `list` and `inspect` p50 (vs the same with none running), `skiff ps` and
 *   `skiff stats` (vs reading the same cgroup files directly), one stop and one start among them,
 *   daemon RSS and open fds;
 * - loop devices and mounts left after all containers stopped (the mount cache's bound).
 * Everything lives under the harness's directory and cgroup prefix (unique per run) and runc's
 * temporary root; only processes started here are ended (by pid, through runc or the daemon).
 */
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { link, mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { connect, type Client } from "../src/client/index.js";
import { DEFAULT_MOUNT_CACHE_SIZE } from "../src/daemon/config/schema.js";
import { pack } from "../src/npk/pack.js";
import { ContainerHarness } from "../test/helpers/containers.js";
import { RuncBaseline } from "./runc-baseline.js";
import { inWorkers, ms, percentile, timed, versus } from "./stats.js";

const run = promisify(execFile);
const CLIENTS = 8;
const SAMPLES = 50;
const CLI = new URL("../cli/skiff.js", import.meta.url).pathname; // the installed `skiff` (bundled)

function fleetSize(): number {
  const text = process.env.SKIFF_BENCH_SCALE ?? "1000";
  const n = Number(text);
  if (!Number.isInteger(n) || n < 10)
    throw new Error(`SKIFF_BENCH_SCALE must be an integer >= 10, not ${text}`);
  return n;
}

const mean = (s: number[]): number => s.reduce((a, b) => a + b, 0) / s.length;
const kib = (pid: number): Promise<number> =>
  readFile(`/proc/${pid}/status`, "utf8").then((t) => Number(/^VmRSS:\s+(\d+) kB/m.exec(t)?.[1] ?? NaN));
const fds = async (pid: number): Promise<number> => (await readdir(`/proc/${pid}/fd`)).length;

/** Loop devices over files under `dir`, and mounts under it. */
async function leftovers(dir: string): Promise<{ loops: number; mounts: number }> {
  let loops = 0;
  for (const b of (await readdir("/sys/block")).filter((n) => n.startsWith("loop"))) {
    const backing = await readFile(`/sys/block/${b}/loop/backing_file`, "utf8").catch(() => "");
    if (backing.startsWith(`${dir}/`)) loops++;
  }
  const mounts = (await readFile("/proc/self/mountinfo", "utf8"))
    .split("\n")
    .filter((l) => l.split(" ")[4]?.startsWith(`${dir}/`)).length;
  return { loops, mounts };
}

/**
 * `leftovers` once the mount cache has released what exceeds `bound` (releases follow the
 * instances' cleanups), or after a minute: whatever is left then.
 */
async function settledLeftovers(dir: string, bound: number): Promise<{ loops: number; mounts: number }> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const left = await leftovers(dir);
    if ((left.loops <= bound && left.mounts <= bound) || Date.now() > deadline) return left;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The skiff-monitor's bundle of a running container (its init's parent's --bundle). */
async function bundleOf(client: Client, container: string): Promise<string> {
  const init = (await client.inspect(container)).process!.pid;
  const monitor = Number(/^PPid:\s+(\d+)/m.exec(await readFile(`/proc/${init}/status`, "utf8"))?.[1]);
  const args = (await readFile(`/proc/${monitor}/cmdline`, "utf8")).split("\0");
  const bundle = args[args.indexOf("--bundle") + 1];
  if (bundle === undefined) throw new Error(`bench: no --bundle in ${args.join(" ")}`);
  return bundle;
}

/** The cgroup files `inspect` reads for statistics (src/daemon/cgroups/stats.ts), per container (v1 or v2). */
async function cgroupStatFiles(prefix: string): Promise<string[]> {
  const v1 = await readdir("/sys/fs/cgroup/memory").then(
    () => true,
    () => false,
  );
  const files: string[] = [];
  if (v1) {
    const base = (c: string) => join("/sys/fs/cgroup", c, prefix);
    for (const d of await readdir(base("memory"), { withFileTypes: true })) {
      if (!d.isDirectory()) continue;
      files.push(
        ...["memory.usage_in_bytes", "memory.max_usage_in_bytes", "memory.limit_in_bytes", "memory.stat"].map(
          (f) => join(base("memory"), d.name, f),
        ),
        join(base("cpuacct"), d.name, "cpuacct.usage"),
        join(base("cpu"), d.name, "cpu.stat"),
        join(base("pids"), d.name, "pids.current"),
        join(base("pids"), d.name, "pids.max"),
        join(base("blkio"), d.name, "blkio.throttle.io_service_bytes_recursive"),
        join(base("blkio"), d.name, "blkio.throttle.io_serviced_recursive"),
      );
    }
  } else {
    const base = join("/sys/fs/cgroup", prefix);
    for (const d of await readdir(base, { withFileTypes: true })) {
      if (!d.isDirectory()) continue;
      for (const f of [
        "memory.current",
        "memory.peak",
        "memory.max",
        "memory.stat",
        "memory.swap.current",
        "cpu.stat",
        "pids.current",
        "pids.max",
        "io.stat",
      ])
        files.push(join(base, d.name, f));
    }
  }
  return files;
}

export async function benchScale(): Promise<string[]> {
  const n = fleetSize();
  const h = await ContainerHarness.create();
  let runc: RuncBaseline | undefined;
  const clients: Client[] = [];
  const out: string[] = [];
  try {
    // N packages from one fs.img: the clones differ in their names only.
    const all = join(h.dir, "all");
    await mkdir(all);
    const manifest = join(h.dir, "scale.yaml");
    await writeFile(
      manifest,
      `name: ${h.name("scale")}\nversion: 1.0.0\ninit: /bin/sleep\nargs: ["100000"]\nuid: 1000\ngid: 1000\n` +
        `mounts:\n  /dev:\n    type: dev\n  /proc:\n    type: proc\n`,
    );
    const packed = await pack({
      manifestPath: manifest,
      rootDir: join(h.dir, "busybox"),
      out: all,
      clones: n,
    });
    const fleet = packed.map(
      (p) => `${p.slice(all.length + 1, -".npk".length).replace(/-1\.0\.0$/, "")}:1.0.0`,
    );
    const repo = join(h.dir, "repo");

    // Start-up and idle RSS, 1 package vs N.
    await link(packed[0]!, join(repo, packed[0]!.slice(all.length + 1)));
    // Started twice, the second measured, as with N below.
    await h.startDaemon();
    await h.stopDaemon();
    const startOne = await timed(() => h.startDaemon());
    const rssOne = await kib(h.daemonPid);
    const listIdle: number[] = [];
    await h.stopDaemon();
    for (const p of packed.slice(1)) await link(p, join(repo, p.slice(all.length + 1)));
    // The first start with N packages parses each manifest; the next ones find them in the
    // manifest cache (<run_dir>/manifest-cache/), as a device's every restart after an install.
    const startCold = await timed(() => h.startDaemon());
    await h.stopDaemon();
    const startAll = await timed(() => h.startDaemon());
    const rssAll = await kib(h.daemonPid);
    const perPackageMs = (startAll - startOne) / (n - 1);
    const perPackageKib = (rssAll - rssOne) / (n - 1);
    out.push(
      versus(
        `skiffd start-up with ${n} packages installed`,
        `${ms(startAll)} (${perPackageMs.toFixed(3)} ms per package; first start, manifests not cached: ${ms(startCold)}, ${((startCold - startOne) / (n - 1)).toFixed(3)} ms per package)`,
        `1 package ${ms(startOne)}; target <= 0.5 ms per package`,
        perPackageMs / 0.5,
      ),
      versus(
        `skiffd RSS with ${n} packages installed`,
        `${(rssAll / 1024).toFixed(1)} MiB (${perPackageKib.toFixed(1)} KiB per package)`,
        `1 package ${(rssOne / 1024).toFixed(1)} MiB; target <= 20 KB (19.5 KiB) per package`,
        perPackageKib / (20_000 / 1024),
      ),
    );
    for (let i = 0; i < SAMPLES; i++) listIdle.push(await timed(() => h.client.list()));
    const inspectIdle: number[] = [];
    for (let i = 0; i < SAMPLES; i++) inspectIdle.push(await timed(() => h.client.inspect(fleet[i % n]!)));

    // Sequential starts, each mounting its image first.
    const cold: number[] = [];
    for (const c of fleet) cold.push(await timed(() => h.client.start(c)));
    // The daemon removes a bundle directory when its container stops: what its config.json
    // mounts from there (skiff-init) is copied, and the baseline's configs point at the copy.
    const template = await bundleOf(h.client, fleet[0]!);
    const kept = join(h.dir, "runc-bundle-files");
    await run("cp", ["-a", template, kept]);
    runc = await RuncBaseline.fromBundle(template);
    const bundles: string[] = [];
    const ids = fleet.map((_, i) => `scale-${i}`);
    for (const [i, c] of fleet.entries()) {
      const root = await RuncBaseline.rootOf(await bundleOf(h.client, c));
      const bundle = await runc.bundle(ids[i]!, ["/bin/sleep", "100000"], root);
      const config = join(bundle, "config.json");
      await writeFile(config, (await readFile(config, "utf8")).replaceAll(`${template}/`, `${kept}/`));
      bundles.push(bundle);
    }

    // With N running.
    for (let i = 0; i < CLIENTS; i++) clients.push(await connect(h.url, { timeout: 120_000 }));
    const listFull: number[] = [];
    for (let i = 0; i < SAMPLES; i++) listFull.push(await timed(() => h.client.list()));
    const inspectFull: number[] = [];
    for (let i = 0; i < SAMPLES; i++)
      inspectFull.push(await timed(() => h.client.inspect(fleet[(i * 7919) % n]!)));
    const cli = (args: string[]) =>
      timed(() => run(process.execPath, [CLI, "--url", h.url, ...args], { maxBuffer: 64 << 20 }));
    const nodeBare = Math.min(
      await timed(() => run(process.execPath, ["-e", "0"])),
      await timed(() => run(process.execPath, ["-e", "0"])),
    );
    const ps = Math.min(await cli(["ps"]), await cli(["ps"]));
    const stats = Math.min(await cli(["stats"]), await cli(["stats"]));
    const files = await cgroupStatFiles(h.cgroup);
    // The baseline reads the same files one after the other, synchronously: the cheapest way.
    const readAll = () => {
      for (const f of files) {
        try {
          readFileSync(f, "utf8");
        } catch {
          // A controller without the file: skipped, as the daemon does.
        }
      }
    };
    const direct = Math.min(
      await timed(() => Promise.resolve(readAll())),
      await timed(() => Promise.resolve(readAll())),
    );
    const request: number[] = [];
    for (let i = 0; i < 5; i++) request.push(await timed(() => h.client.statistics()));
    const middle = fleet[Math.floor(n / 2)]!;
    const stopOne = await timed(() => h.client.stop(middle));
    const startOne1 = await timed(() => h.client.start(middle));
    const rssRunning = await kib(h.daemonPid);
    const fdsRunning = await fds(h.daemonPid);
    const stopAll = () => inWorkers(n, CLIENTS, async (i, w) => void (await clients[w]!.stop(fleet[i]!)));
    await stopAll();
    // The mount cache keeps the most recently used unused images (mount_cache_size, default
    // DEFAULT_MOUNT_CACHE_SIZE) and releases the rest.
    const left = await settledLeftovers(h.dir, DEFAULT_MOUNT_CACHE_SIZE);
    // The next rounds start with the images mounted: mounted by request, which keeps them.
    for (let i = 0; i < n; i += 50) await h.client.mount(fleet.slice(i, i + 50));

    const runcSeq: number[] = [];
    for (const [i, id] of ids.entries()) runcSeq.push(await timed(() => runc!.runDetached(id, bundles[i]!)));
    const deleteAll = () => inWorkers(n, CLIENTS, async (i) => void (await runc!.deleteForce(ids[i]!)));
    await deleteAll();

    const warm: number[] = [];
    for (const c of fleet) warm.push(await timed(() => h.client.start(c)));
    await stopAll();
    const skiffParallel = await timed(() =>
      inWorkers(n, CLIENTS, async (i, w) => void (await clients[w]!.start(fleet[i]!))),
    );
    await stopAll();
    const runcParallel = await timed(() =>
      inWorkers(n, CLIENTS, async (i) => void (await runc!.runDetached(ids[i]!, bundles[i]!))),
    );
    await deleteAll();

    const tenth = Math.max(1, Math.floor(n / 10));
    const runcEach = mean(runcSeq);
    const each = (s: number[]) =>
      `${ms(mean(s))} each (first ${tenth} ${ms(mean(s.slice(0, tenth)))}, last ${tenth} ${ms(mean(s.slice(-tenth)))})`;
    const runcFigure = `runc run -d ${each(runcSeq)}; target <= 1.2x, flat`;
    out.push(
      versus(
        `${n} sequential starts, first mount of each image`,
        each(cold),
        runcFigure,
        mean(cold) / runcEach,
      ),
      `  flatness: last ${tenth} / first ${tenth} = ${(mean(cold.slice(-tenth)) / mean(cold.slice(0, tenth))).toFixed(2)}x (runc ${(mean(runcSeq.slice(-tenth)) / mean(runcSeq.slice(0, tenth))).toFixed(2)}x)`,
      versus(`${n} sequential starts, images mounted`, each(warm), runcFigure, mean(warm) / runcEach),
      versus(
        `${n} starts from ${CLIENTS} clients in parallel`,
        `${ms(skiffParallel / n)} per container`,
        `runc run -d from ${CLIENTS} workers ${ms(runcParallel / n)} per container; target <= 1.5x`,
        skiffParallel / runcParallel,
      ),
      versus(
        `list p50 with ${n} running`,
        ms(percentile(listFull, 50)),
        `none running ${ms(percentile(listIdle, 50))}; target flat`,
        percentile(listFull, 50) / percentile(listIdle, 50),
      ),
      versus(
        `inspect p50 with ${n} running`,
        ms(percentile(inspectFull, 50)),
        `none running ${ms(percentile(inspectIdle, 50))}; target flat`,
        percentile(inspectFull, 50) / percentile(inspectIdle, 50),
      ),
      versus(
        `skiff stats of ${n} containers (command wall time)`,
        ms(stats),
        `node -e 0 ${ms(nodeBare)} + the same ${files.length} cgroup files read directly ${ms(direct)}; target <= 1.5x`,
        stats / (nodeBare + direct),
      ),
      versus(
        `statistics request for ${n} running containers (one request), p50 of 5`,
        ms(percentile(request, 50)),
        `the same ${files.length} cgroup files read directly ${ms(direct)}; target <= 1.5x`,
        percentile(request, 50) / direct,
      ),
      versus(
        `skiff ps with ${n} running (command wall time)`,
        ms(ps),
        `node -e 0 ${ms(nodeBare)}`,
        ps / nodeBare,
      ),
      `stop of one among ${n} running: ${ms(stopOne)}`,
      versus(
        `start of one among ${n - 1} running (image mounted)`,
        ms(startOne1),
        `runc run -d ${ms(runcEach)}`,
        startOne1 / runcEach,
      ),
      `skiffd with ${n} running: RSS ${(rssRunning / 1024).toFixed(1)} MiB (${((rssRunning - rssAll) / n).toFixed(1)} KiB per running container), ${fdsRunning} fds`,
      `left after all ${n} stopped: ${left.loops} loop devices, ${left.mounts} mounts (mount cache bound ${DEFAULT_MOUNT_CACHE_SIZE}; target: released when no instance needs them, or a bounded cache)`,
    );
    return out;
  } finally {
    for (const c of clients) c.close();
    await runc?.cleanup();
    await h.close();
  }
}
