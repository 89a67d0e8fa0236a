/**
 * Cgroup benchmarks: statistics for 100 cgroups (baseline: the same files read with fs/promises, all in
 * parallel), and freeze/thaw latency of Skiff's freezer on a one-process cgroup (baseline: `runc pause` /
 * `runc resume` of a busybox container, which drive the same v1 freezer through the runc binary).
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { randomBytes } from "node:crypto";
import { copyFile, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { detectLayout, type CgroupLayout } from "../src/daemon/cgroups/layout.js";
import { CgroupTree } from "../src/daemon/cgroups/tree.js";
import { readStats } from "../src/daemon/cgroups/cgroup-stats.js";
import { killCgroup } from "../src/daemon/cgroups/kill.js";
import { Freezer } from "../src/daemon/power/freezer.js";
import { ms, percentile, timed, versus } from "./stats.js";

const run = promisify(execFile);
const CGROUPS = 100;
const STATS_ROUNDS = 30;
const FREEZE_ROUNDS = 30;

// The files readStats reads per cgroup, for the baseline that reads them through fs/promises.
export const STATS_FILES: Record<1 | 2, [string, string][]> = {
  1: [
    ["memory", "memory.usage_in_bytes"],
    ["memory", "memory.max_usage_in_bytes"],
    ["memory", "memory.limit_in_bytes"],
    ["memory", "memory.stat"],
    ["cpuacct", "cpuacct.usage"],
    ["cpu", "cpu.stat"],
    ["pids", "pids.current"],
    ["pids", "pids.max"],
    ["blkio", "blkio.throttle.io_service_bytes_recursive"],
    ["blkio", "blkio.throttle.io_serviced_recursive"],
  ],
  2: [
    ["memory", "memory.current"],
    ["memory", "memory.peak"],
    ["memory", "memory.max"],
    ["memory", "memory.stat"],
    ["memory", "memory.swap.current"],
    ["cpu", "cpu.stat"],
    ["pids", "pids.current"],
    ["pids", "pids.max"],
    ["io", "io.stat"],
  ],
};

async function statsLines(layout: CgroupLayout, tree: CgroupTree): Promise<string[]> {
  const paths = Array.from({ length: CGROUPS }, (_, i) => `${tree.rootPath}/stats-${i}`);
  for (const path of paths) await tree.create(path);
  const files = STATS_FILES[layout.controllers.get("memory")?.version ?? 2].flatMap(([controller, file]) => {
    const mount = layout.controllers.get(controller)?.mount;
    return mount === undefined ? [] : paths.map((path) => `${mount}${path}/${file}`);
  });
  const figures: number[] = [];
  const baselines: number[] = [];
  for (let round = 0; round < STATS_ROUNDS; round++) {
    figures.push(
      await timed(async () => {
        for (const path of paths) readStats(layout, path);
      }),
    );
    baselines.push(
      await timed(() => Promise.all(files.map((file) => readFile(file, "utf8").catch(() => "")))),
    );
  }
  const figure = percentile(figures, 50);
  const baseline = percentile(baselines, 50);
  return [
    versus(
      `stats of ${CGROUPS} cgroups, p50`,
      ms(figure),
      `same files via fs/promises in parallel ${ms(baseline)}`,
      figure / baseline,
    ),
    `stats of ${CGROUPS} cgroups, p95: ${ms(percentile(figures, 95))}`,
  ];
}

async function runcBundle(dir: string, cgroupsPath: string): Promise<string> {
  const bundle = join(dir, "bundle");
  await mkdir(join(bundle, "rootfs", "bin"), { recursive: true });
  await copyFile("/bin/busybox", join(bundle, "rootfs", "bin", "busybox"));
  await symlink("busybox", join(bundle, "rootfs", "bin", "sleep"));
  await run("runc", ["spec"], { cwd: bundle });
  const config = JSON.parse(await readFile(join(bundle, "config.json"), "utf8")) as {
    process: { terminal: boolean; args: string[] };
    linux: { cgroupsPath?: string };
  };
  config.process.terminal = false;
  config.process.args = ["sleep", "100000"];
  config.linux.cgroupsPath = cgroupsPath;
  await writeFile(join(bundle, "config.json"), JSON.stringify(config));
  return bundle;
}

async function freezeLines(layout: CgroupLayout, tree: CgroupTree, dir: string): Promise<string[]> {
  const freezer = new Freezer(layout);
  const path = `${tree.rootPath}/freeze`;
  await tree.create(path);
  const sleeper: ChildProcess = spawn("sleep", ["100000"], { stdio: "ignore" });
  const freezes: number[] = [];
  const thaws: number[] = [];
  try {
    await tree.attach(path, sleeper.pid!);
    for (let round = 0; round < FREEZE_ROUNDS; round++) {
      freezes.push(await timed(() => freezer.freeze(path, { timeoutMs: 2000 })));
      thaws.push(await timed(() => freezer.thaw(path)));
    }
  } finally {
    await killCgroup(layout, path);
    if (sleeper.exitCode === null && sleeper.signalCode === null) await once(sleeper, "exit");
  }

  const runcRoot = join(dir, "runc");
  const cgroupsPath = `${tree.rootPath}/runc`;
  const id = `skiff-bench-${randomBytes(4).toString("hex")}`;
  const runc = (...args: string[]): Promise<unknown> => run("runc", ["--root", runcRoot, ...args]);
  const pauses: number[] = [];
  const resumes: number[] = [];
  try {
    // Detached, the container inherits runc's stdio: with pipes (execFile) the call would never end.
    const starter = spawn(
      "runc",
      ["--root", runcRoot, "run", "-d", "--bundle", await runcBundle(dir, cgroupsPath), id],
      {
        stdio: "ignore",
      },
    );
    const [code] = (await once(starter, "exit")) as [number | null];
    if (code !== 0) throw new Error(`runc run exited with ${code}`);
    for (let round = 0; round < FREEZE_ROUNDS; round++) {
      pauses.push(await timed(() => runc("pause", id)));
      resumes.push(await timed(() => runc("resume", id)));
    }
  } catch (error) {
    return [
      `freeze p50: ${ms(percentile(freezes, 50))}, thaw p50: ${ms(percentile(thaws, 50))}`,
      `runc pause/resume baseline skipped: ${(error as Error).message.split("\n")[0]}`,
    ];
  } finally {
    await runc("delete", "-f", id).catch(() => undefined);
    await killCgroup(layout, cgroupsPath); // in case runc did not get to clean up
  }
  const [freeze, pause, thaw, resume] = [freezes, pauses, thaws, resumes].map((s) => percentile(s, 50)) as [
    number,
    number,
    number,
    number,
  ];
  return [
    versus("freeze p50", ms(freeze), `runc pause ${ms(pause)}`, freeze / pause),
    versus("thaw p50", ms(thaw), `runc resume ${ms(resume)}`, thaw / resume),
  ];
}

export async function benchCgroups(): Promise<string[]> {
  const layout = await detectLayout();
  const tree = new CgroupTree(layout, `skiff-bench-cgroups-${randomBytes(4).toString("hex")}`);
  const dir = await mkdtemp(join(tmpdir(), "skiff-bench-cgroups-"));
  await tree.createRoot();
  try {
    return [
      `layout: ${layout.kind}`,
      ...(await statsLines(layout, tree)),
      ...(await freezeLines(layout, tree, dir)),
    ];
  } finally {
    for (const child of ["freeze", "runc", ...Array.from({ length: CGROUPS }, (_, i) => `stats-${i}`)]) {
      await tree.remove(`${tree.rootPath}/${child}`);
    }
    await tree.removeRoot();
    await rm(dir, { recursive: true, force: true });
  }
}
