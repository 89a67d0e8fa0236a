/**
 * What a test daemon leaves behind, removed whatever state the daemon is in (stopped, crashed,
 * killed, its directory already gone): so one test file's failure cannot leak containers,
 * monitors, mounts or cgroups into the next.
 *
 * Everything is found from two things unique to one test daemon: its temporary directory and its
 * cgroup name (a per-run prefix, `testCgroupName()`). Processes are ended by pid, and only those
 * found through them: a process whose command line names a path in the daemon's directory (its
 * monitors, their runc/crun, the daemon itself) or that sits in one of its cgroups. Nothing is
 * looked up by process name.
 *
 * Order matters: processes first (a live monitor would restart nothing, but a live container
 * keeps its mounts and cgroups busy), then mounts deepest first, the loop and verity devices they
 * leave, cgroups children first, and the directory last. What cannot be removed is reported:
 * `cleanupDaemon` throws naming each leftover, so the test that leaked fails instead of the next.
 */
import { execFile } from "node:child_process";
import { access, readdir, readFile, rm, rmdir, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { verityNamePrefix } from "../../src/daemon/mount/dm-verity.js";
import { waitFor } from "./wait.js";

const run = promisify(execFile);

let cgroupCounter = 0;

/**
 * A cgroup name for one test daemon, unique to this test process and call:
 * `skiff-test-<pid>-<n>`. Never the production name `skiff`.
 */
export function testCgroupName(): string {
  cgroupCounter += 1;
  return `skiff-test-${process.pid}-${cgroupCounter}`;
}

export interface DaemonLeftovers {
  /** The test daemon's own directory (state, run, log and data dirs and sockets live in it). */
  dir: string;
  /** The daemon's `cgroup` setting (its subtree in every hierarchy). */
  cgroup: string;
  /** The daemon's run_dir when it is not `<dir>/state/run` (names its verity devices). */
  runDir?: string;
}

// How long processes get to die and busy cgroups and mounts to become free once killed.
const SETTLE_MS = 30_000;

/** Removes everything `leftovers` names; throws listing what could not be removed. */
export async function cleanupDaemon(leftovers: DaemonLeftovers): Promise<void> {
  const problems: string[] = [];
  const note = (what: string) => (e: unknown) => {
    problems.push(`${what}: ${e instanceof Error ? e.message : String(e)}`);
  };
  const dir = resolve(leftovers.dir);
  const cgroupDirs = await cgroupRoots(leftovers.cgroup).catch((e: unknown) => {
    note("listing cgroup hierarchies")(e);
    return [] as string[];
  });

  await killProcesses(dir, cgroupDirs).catch(note("killing processes"));
  await unmountUnder(dir).catch(note("unmounting"));
  await removeVerityDevices(leftovers.runDir ?? join(dir, "state", "run")).catch(note("verity devices"));
  await detachLoopsUnder(dir).catch(note("loop devices"));
  for (const root of cgroupDirs) await removeCgroupTree(root).catch(note(`cgroup ${root}`));
  await rm(dir, { recursive: true, force: true }).catch(note(`removing ${dir}`));

  if (problems.length > 0) {
    throw new Error(`test daemon in ${dir} left things behind:\n  ${problems.join("\n  ")}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Processes

/** Pids of processes whose command line names `dir` or a path in it. */
async function pidsNaming(dir: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    const argv = await readFile(`/proc/${entry}/cmdline`, "utf8").catch(() => "");
    if (argv.split("\0").some((arg) => pathIsIn(arg, dir))) pids.push(pid);
  }
  return pids;
}

/** True when `arg` is `dir`, a path in it, or `--flag=<such a path>`. */
function pathIsIn(arg: string, dir: string): boolean {
  const value = arg.startsWith("-") && arg.includes("=") ? arg.slice(arg.indexOf("=") + 1) : arg;
  return value === dir || value.startsWith(`${dir}/`) || value.includes(`://${dir}/`);
}

/** Every pid in `root` and the cgroups below it. */
async function pidsInCgroupTree(root: string): Promise<number[]> {
  const pids: number[] = [];
  for (const cgroup of await cgroupTree(root)) {
    const text = await readFile(join(cgroup, "cgroup.procs"), "utf8").catch(() => "");
    for (const line of text.split("\n")) if (line !== "") pids.push(Number(line));
  }
  return pids;
}

/** Whether a process with this pid exists (signal 0). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function killProcesses(dir: string, cgroupRoots: string[]): Promise<void> {
  // A frozen process cannot die on a v1 freezer: thaw first (v2 lets SIGKILL through anyway).
  for (const root of cgroupRoots) await thawTree(root);
  const find = async (): Promise<number[]> => {
    const pids = new Set(await pidsNaming(dir));
    for (const root of cgroupRoots) for (const pid of await pidsInCgroupTree(root)) pids.add(pid);
    pids.delete(process.pid);
    return [...pids].filter(alive);
  };
  let last: number[] = [];
  await waitFor(
    async () => {
      last = await find();
      for (const pid of last) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // Gone meanwhile.
        }
      }
      return last.length === 0;
    },
    {
      timeoutMs: SETTLE_MS,
      what: "the test daemon's processes to end",
      intervalMs: 50,
      detail: () => `still alive: ${last.join(", ")}`,
    },
  );
}

// ---------------------------------------------------------------------------------------------
// Mounts, loop and verity devices

function unescapeMountPath(path: string): string {
  return path.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/** Mount points at or under `dir`, in /proc/self/mountinfo order (parents and lower layers first). */
async function mountsUnder(dir: string): Promise<string[]> {
  const text = await readFile("/proc/self/mountinfo", "utf8");
  return text
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => unescapeMountPath(line.split(" ")[4]!))
    .filter((point) => point === dir || point.startsWith(`${dir}/`));
}

async function unmountUnder(dir: string): Promise<void> {
  let last: string[] = [];
  await waitFor(
    async () => {
      last = await mountsUnder(dir);
      // Deepest first, and of mounts stacked on one point the last mounted first.
      const order = last
        .map((point, index) => ({ point, index, depth: point.split("/").length }))
        .sort((a, b) => b.depth - a.depth || b.index - a.index);
      for (const { point } of order) await run("umount", [point]).catch(() => undefined);
      return (await mountsUnder(dir)).length === 0;
    },
    {
      timeoutMs: SETTLE_MS,
      what: `the mounts under ${dir} to be unmounted`,
      intervalMs: 100,
      detail: () => `still mounted: ${last.join(", ")}`,
    },
  );
}

async function removeVerityDevices(runDir: string): Promise<void> {
  const prefix = verityNamePrefix(runDir);
  const blocks = await readdir("/sys/block").catch(() => [] as string[]);
  for (const block of blocks.filter((b) => b.startsWith("dm-"))) {
    const name = (await readFile(`/sys/block/${block}/dm/name`, "utf8").catch(() => "")).trim();
    if (name.startsWith(prefix)) await run("dmsetup", ["remove", "--retry", name]);
  }
}

/** Detaches every loop device whose backing file is in `dir` (mount's autoclear does it normally). */
async function detachLoopsUnder(dir: string): Promise<void> {
  const blocks = await readdir("/sys/block").catch(() => [] as string[]);
  for (const block of blocks.filter((b) => /^loop\d+$/.test(b))) {
    const backing = (await readFile(`/sys/block/${block}/loop/backing_file`, "utf8").catch(() => "")).trim();
    const file = backing.replace(/ \(deleted\)$/, "");
    if (file === dir || file.startsWith(`${dir}/`)) await run("losetup", ["-d", `/dev/${block}`]);
  }
}

// ---------------------------------------------------------------------------------------------
// Cgroups

/** `<hierarchy>/<name>` in every mounted cgroup v1 hierarchy and the cgroup2 tree, if it exists. */
async function cgroupRoots(name: string): Promise<string[]> {
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.:@+-]*$/.test(name) || name === "skiff") {
    throw new Error(`refusing to clean up cgroup ${JSON.stringify(name)}: not a test daemon's cgroup name`);
  }
  const text = await readFile("/proc/self/mountinfo", "utf8");
  const roots = new Set<string>();
  for (const line of text.split("\n")) {
    const [mountPart, fsPart] = line.split(" - ");
    if (mountPart === undefined || fsPart === undefined) continue;
    const fsType = fsPart.split(" ")[0];
    if (fsType !== "cgroup" && fsType !== "cgroup2") continue;
    const point = unescapeMountPath(mountPart.split(" ")[4]!);
    const root = join(point, name);
    const isDir = await readdir(root).then(
      () => true,
      () => false,
    );
    if (isDir) roots.add(root);
  }
  return [...roots];
}

/** `root` and every cgroup below it, parents before children. */
async function cgroupTree(root: string): Promise<string[]> {
  const entries = await readdir(root, { withFileTypes: true }).catch(() => []);
  const tree = [root];
  for (const entry of entries)
    if (entry.isDirectory()) tree.push(...(await cgroupTree(join(root, entry.name))));
  return tree;
}

async function thawTree(root: string): Promise<void> {
  for (const cgroup of await cgroupTree(root)) {
    await writeFile(join(cgroup, "freezer.state"), "THAWED").catch(() => undefined);
    await writeFile(join(cgroup, "cgroup.freeze"), "0").catch(() => undefined);
  }
}

/** Removes the cgroups of `root`, children first, killing by pid what is still in them. */
async function removeCgroupTree(root: string): Promise<void> {
  let left: string[] = [];
  await waitFor(
    async () => {
      const tree = await cgroupTree(root);
      for (const cgroup of tree.reverse()) {
        const procs = await readFile(join(cgroup, "cgroup.procs"), "utf8").catch(() => "");
        for (const pid of procs.split("\n").filter((l) => l !== "")) {
          try {
            process.kill(Number(pid), "SIGKILL");
          } catch {
            // Gone meanwhile.
          }
        }
        await rmdir(cgroup).catch(() => undefined);
      }
      left = await cgroupTree(root).then(
        async (t) => ((await exists(root)) ? t : []),
        () => [],
      );
      return left.length === 0;
    },
    {
      timeoutMs: SETTLE_MS,
      what: `cgroup ${root} to be removed`,
      intervalMs: 50,
      detail: () => `still there: ${left.join(", ")}`,
    },
  );
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}
