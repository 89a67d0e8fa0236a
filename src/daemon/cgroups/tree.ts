// Skiff's cgroup subtree: /<root> on every hierarchy, process groups below it, containers below those.
// runc creates and joins a container's own cgroup (from linux.cgroupsPath); this module creates the parents,
// removes what is left after exit, and creates container cgroups itself only when runc is not involved.
import { mkdir, rmdir } from "node:fs/promises";
import type { CgroupLayout } from "./layout.js";
import {
  allDirs,
  containerCgroupPath,
  groupCgroupPath,
  hierarchyDir,
  parentCgroupPath,
  validateCgroupName,
} from "./paths.js";
import {
  CgroupFileError,
  delay,
  errnoCode,
  parsePids,
  readOptionalText,
  readText,
  writeControl,
} from "./fsio.js";
import { applyLimits, type CgroupLimits } from "./limits.js";

export interface RemoveOptions {
  signal?: AbortSignal;
  /** How long to keep retrying while the kernel still reports the cgroup busy. Default 2000 ms. */
  timeoutMs?: number;
}

// A cgroup whose last task just exited can stay busy for a moment (the kernel drops the task from the
// css_set asynchronously); rmdir then fails with EBUSY and succeeds shortly after.
const RMDIR_RETRY_MS = [1, 5, 10, 25, 50, 100];

export class CgroupTree {
  /** Absolute cgroup path of Skiff's root, e.g. "/skiff". */
  readonly rootPath: string;

  constructor(
    readonly layout: CgroupLayout,
    readonly rootName: string,
  ) {
    validateCgroupName(rootName, "cgroup");
    this.rootPath = `/${rootName}`;
  }

  containerPath(container: string, group?: string): string {
    return containerCgroupPath(this.rootName, container, group);
  }

  /** A container placed by Northstar's `cgroups.parent` path (no process group): /<root>/<parent>/<name>. */
  parentPath(container: string, parent: string): string {
    return parentCgroupPath(this.rootName, parent, container);
  }

  groupPath(group: string): string {
    return groupCgroupPath(this.rootName, group);
  }

  /** Creates /<root> on every hierarchy (startup). Existing directories are kept. */
  async createRoot(): Promise<void> {
    await this.create(this.rootPath);
  }

  /** Removes /<root> from every hierarchy (shutdown). Fails if containers or groups are still below it. */
  async removeRoot(options: RemoveOptions = {}): Promise<void> {
    await this.remove(this.rootPath, options);
  }

  /** Creates a process group's parent cgroup and applies its limits, which hold for all members together. */
  async createGroup(group: string, limits?: CgroupLimits): Promise<string> {
    const path = this.groupPath(group);
    await this.create(path);
    if (limits !== undefined) await applyLimits(this.layout, path, limits);
    return path;
  }

  async removeGroup(group: string, options: RemoveOptions = {}): Promise<void> {
    await this.remove(this.groupPath(group), options);
  }

  /** Removes a container's cgroups (left by runc or created here) from every hierarchy after it exited. */
  async removeContainer(container: string, group?: string, options: RemoveOptions = {}): Promise<void> {
    await this.remove(this.containerPath(container, group), options);
  }

  /** mkdir -p of an absolute cgroup path on every hierarchy, preparing each new level for children. */
  async create(path: string): Promise<void> {
    const parts = path.split("/").filter((part) => part !== "");
    for (let depth = 1; depth <= parts.length; depth++) {
      const level = `/${parts.slice(0, depth).join("/")}`;
      await Promise.all(this.layout.hierarchies.map((mount) => this.createLevel(mount, level)));
    }
  }

  private async createLevel(mount: string, path: string): Promise<void> {
    const dir = hierarchyDir(mount, path);
    try {
      await mkdir(dir);
    } catch (error) {
      if (errnoCode(error) !== "EEXIST") {
        throw new CgroupFileError(`cannot create cgroup ${dir}: ${errnoCode(error)}`, dir, errnoCode(error));
      }
    }
    const parent = dir.slice(0, dir.lastIndexOf("/"));
    const cpuset = this.layout.controllers.get("cpuset");
    if (cpuset?.version === 1 && mount === cpuset.mount) {
      // A new v1 cpuset starts with no cpus and mems, and tasks cannot join it until they are set.
      for (const file of ["cpuset.cpus", "cpuset.mems"]) {
        if ((await readText(`${dir}/${file}`)) !== "") continue;
        await writeControl(`${dir}/${file}`, await readText(`${parent}/${file}`));
      }
    }
    if (mount === this.layout.unified) await enableSubtreeControllers(this.layout, parent);
  }

  /** Removes an absolute cgroup path from every hierarchy; missing directories are fine. */
  async remove(path: string, options: RemoveOptions = {}): Promise<void> {
    if (path === "/") throw new Error("refusing to remove a hierarchy root");
    const deadline = Date.now() + (options.timeoutMs ?? 2000);
    // Wait for every hierarchy before reporting: a failure must not leave other removals retrying in the
    // background, where they could still succeed after the caller has moved on.
    const results = await Promise.allSettled(
      allDirs(this.layout, path).map((dir) => removeDir(dir, deadline, options.signal)),
    );
    const failed = results.find((result) => result.status === "rejected");
    if (failed !== undefined) throw failed.reason;
  }

  /** Moves a process (all its threads) into the cgroup on every hierarchy. */
  async attach(path: string, pid: number): Promise<void> {
    await Promise.all(
      allDirs(this.layout, path).map((dir) => writeControl(`${dir}/cgroup.procs`, String(pid))),
    );
  }

  /** Pids in the cgroup on any hierarchy (a process may be in some hierarchies and not in others). */
  async procs(path: string): Promise<number[]> {
    const lists = await Promise.all(
      allDirs(this.layout, path).map(async (dir) =>
        parsePids((await readOptionalText(`${dir}/cgroup.procs`)) ?? ""),
      ),
    );
    return [...new Set(lists.flat())];
  }
}

// Controllers whose limits or statistics Skiff uses.
const USED_CONTROLLERS = ["cpu", "cpuset", "io", "memory", "pids"];

// In v2 a child only gets the controllers its parent enables in cgroup.subtree_control. Only parents: a
// cgroup with controllers enabled for its children cannot hold processes itself (EBUSY on cgroup.procs).
// Only the controllers Skiff uses, so that a hybrid host's cgroup2 root is left as it was.
async function enableSubtreeControllers(layout: CgroupLayout, parent: string): Promise<void> {
  const wanted = USED_CONTROLLERS.filter((controller) => layout.controllers.get(controller)?.version === 2);
  if (wanted.length === 0) return;
  const enabled = new Set(((await readOptionalText(`${parent}/cgroup.subtree_control`)) ?? "").split(/\s+/));
  const missing = wanted.filter((controller) => !enabled.has(controller));
  if (missing.length > 0) {
    await writeControl(`${parent}/cgroup.subtree_control`, missing.map((c) => `+${c}`).join(" "));
  }
}

async function removeDir(dir: string, deadline: number, signal: AbortSignal | undefined): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await rmdir(dir);
      return;
    } catch (error) {
      const code = errnoCode(error);
      if (code === "ENOENT") return;
      if (code !== "EBUSY" || Date.now() >= deadline) {
        const why = code === "EBUSY" || code === "ENOTEMPTY" ? "it still has tasks or child cgroups" : code;
        throw new CgroupFileError(`cannot remove cgroup ${dir}: ${why}`, dir, code);
      }
      await delay(RMDIR_RETRY_MS[Math.min(attempt, RMDIR_RETRY_MS.length - 1)] ?? 100, signal);
    }
  }
}
