// Skiff's cgroup subtree over a daemon's lifetime: root and process groups at startup, one cgroup per
// container (created by runc), where monitors read memory events, statistics, cleanup after exit, removal
// at shutdown.
import { readdir } from "node:fs/promises";
import type { Logger } from "pino";
import type { Manifest } from "../../npk/manifest/index.js";
import type { MemoryNotification } from "../../protocol/messages.js";
import type { DaemonConfig } from "../config/schema.js";
import type { MemoryCounts } from "../monitor/protocol.js";
import { errnoCode } from "./fsio.js";
import { groupLimits, groupOfManifest } from "./groups.js";
import { killCgroup } from "./kill.js";
import { dirname } from "node:path";
import type { CgroupLayout } from "./layout.js";
import { applyFiles, CgroupLimitError, limitsToFiles, type CgroupFile, type CgroupLimits } from "./limits.js";
import { attrFilesFromManifestCgroups } from "./manifest.js";
import { allDirs } from "./paths.js";
import { toProcessStatistics, type ProcessStatistics } from "./process-statistics.js";
import { readStats } from "./cgroup-stats.js";
import { CgroupTree } from "./tree.js";
import { bestEffort } from "../errors.js";
import { resolveWithin } from "../../common/paths.js";

export type SupervisorConfig = Pick<DaemonConfig, "cgroup" | "groups" | "oomMonitorAll">;

export interface CleanupReport {
  /** cgroup.procs listed no process on any hierarchy before the removal. */
  wasEmpty: boolean;
  /** The processes that were still there and were killed. */
  killed: number[];
}

export interface StopReport {
  /** Cgroup paths left in place because containers are still below them. */
  kept: string[];
}

export class CgroupSupervisor {
  readonly tree: CgroupTree;

  constructor(
    readonly layout: CgroupLayout,
    private readonly config: SupervisorConfig,
    private readonly log: Logger,
  ) {
    this.tree = new CgroupTree(layout, config.cgroup);
  }

  /** Creates the root and every configured group with its limits. Existing cgroups (of containers adopted
   *  after a restart) are left alone. On failure, what this call created and is empty is removed again. */
  async start(): Promise<void> {
    try {
      await this.tree.createRoot();
      for (const group of this.config.groups) {
        try {
          await this.tree.createGroup(group.name, groupLimits(group));
        } catch (error) {
          if (error instanceof CgroupLimitError) {
            throw new Error(`groups.${group.name}: ${error.message}`, { cause: error });
          }
          throw error;
        }
      }
    } catch (error) {
      await bestEffort(this.log, "removing the cgroups after a failed start", this.stop());
      throw error;
    }
  }

  /** The configured group a manifest belongs to, or undefined. Throws UnknownGroupError. */
  groupOf(manifest: Pick<Manifest, "name" | "group" | "cgroups">): string | undefined {
    return groupOfManifest(manifest, this.config.groups)?.name;
  }

  /** The container's absolute cgroup path (runc's linux.cgroupsPath): /<root>/[<group>/]<name>. Throws
   *  UnknownGroupError, or an Error when the name is no usable cgroup name or is a group's name. */
  containerPath(manifest: Pick<Manifest, "name" | "group" | "cgroups">): string {
    const group = this.groupOf(manifest);
    if (group === undefined && this.config.groups.some((g) => g.name === manifest.name)) {
      throw new Error(
        `${manifest.name}: a container outside process groups cannot have the name of group "${manifest.name}"`,
      );
    }
    const parent = manifest.cgroups?.parent;
    // Northstar's `parent` naming no configured group: a path below Skiff's cgroup. Its first level
    // must not be a group's (the group's limits and counts would then apply without its membership).
    if (group === undefined && parent !== undefined) {
      const path = this.tree.parentPath(manifest.name, parent);
      const first = path.split("/")[2];
      if (path.split("/").length > 3 && this.config.groups.some((g) => g.name === first)) {
        throw new Error(`${manifest.name}: cgroups.parent "${parent}" lies inside process group "${first}"`);
      }
      return path;
    }
    return this.tree.containerPath(manifest.name, group);
  }

  /**
   * A CRI container's cgroup: `<root>/<podParent>/<name>`, beneath its pod's cgroup
   * (`PodSandboxRef.cgroupParent`, relative to the root; every component checked).
   */
  criContainerPath(podParent: string, name: string): string {
    return resolveWithin(this.tree.rootPath, podParent, name);
  }

  /** The writes of the manifest's `cgroups.*.attrs` (validated; throws CgroupLimitError). Pure. */
  attrFiles(manifest: Pick<Manifest, "cgroups">, warnings: string[]): CgroupFile[] {
    return attrFilesFromManifestCgroups(manifest.cgroups, warnings);
  }

  /** Writes `files` into the container's cgroup, which runc created (call between create and start). */
  async writeAttrs(path: string, files: CgroupFile[]): Promise<void> {
    this.checkContainerPath(path);
    await applyFiles(this.layout, path, files);
  }

  /** Writes limits into a running container's cgroup (CRI's UpdateContainerResources). */
  async writeLimits(path: string, limits: CgroupLimits): Promise<void> {
    this.checkContainerPath(path);
    await applyFiles(this.layout, path, limitsToFiles(this.layout, limits));
  }

  /** Whether the container's memory events become notifications (`oom_monitor`, or `oom_monitor_all`). */
  monitorsMemory(manifest: Pick<Manifest, "cgroups">): boolean {
    return this.config.oomMonitorAll || manifest.cgroups?.memory?.oom_monitor === true;
  }

  /**
   * Where the container's monitor reads memory counters (its eventfd on v1, memory.events on v2):
   * the container's memory cgroup and, in a process group, the group's, whose limit is enforced there.
   */
  monitorMemoryDirs(path: string): { memoryCgroup?: string; memoryGroupDir?: string } {
    const mount = this.layout.controllers.get("memory");
    if (mount === undefined) return {};
    const dir = (p: string): string => `${mount.mount}${p}`;
    const parent = dirname(path);
    const isGroup = this.config.groups.some((g) => this.tree.groupPath(g.name) === parent);
    return {
      memoryCgroup: dir(path),
      // A `cgroups.parent` path is no group: its levels enforce no limit of Skiff's.
      ...(isGroup ? { memoryGroupDir: dir(parent) } : {}),
    };
  }

  /** The container's `process.statistics` (docs/cgroups.md). Synchronous: a handful of cgroupfs reads. */
  stats(path: string): ProcessStatistics {
    return toProcessStatistics(readStats(this.layout, path));
  }

  /** After an exit: stops the memory watcher, kills what is left and removes the container's cgroup on
   *  every hierarchy. A cgroup that is already gone is fine. `keepParents`: the levels above stay
   *  even when empty (a CRI container's pod cgroup belongs to the pod). */
  async cleanup(
    path: string,
    options: { signal?: AbortSignal; keepParents?: boolean } = {},
  ): Promise<CleanupReport> {
    this.checkContainerPath(path);
    const killed = await this.tree.procs(path);
    if (killed.length > 0) await killCgroup(this.layout, path, { signal: options.signal });
    await this.tree.remove(path, { signal: options.signal });
    if (options.keepParents !== true) await this.removeEmptyParents(path);
    return { wasEmpty: killed.length === 0, killed };
  }

  /** Shutdown: removes every group and the root that has no cgroup below it. */
  async stop(): Promise<StopReport> {
    const kept: string[] = [];
    const paths = [...this.config.groups.map((g) => this.tree.groupPath(g.name)), this.tree.rootPath];
    for (const path of paths) {
      if (await this.hasChildren(path)) {
        kept.push(path);
        continue;
      }
      await this.tree.remove(path);
    }
    if (kept.length > 0) this.log.warn({ kept }, "cgroups left in place: containers are still below them");
    return { kept };
  }

  /**
   * The levels a `cgroups.parent` path created above a container, once empty (best effort: a level
   * another container still uses stays, and so does anything at or above a group or the root).
   * INVARIANTS: not serialized with starts below the same level: a container whose runc is creating
   * `<level>/<name>` while this removes `<level>` fails that start (runc's mkdir meets ENOENT); it
   * is rare (same parent path, one exits while another starts) and a retried start succeeds.
   */
  private async removeEmptyParents(path: string): Promise<void> {
    const stops = new Set([
      this.tree.rootPath,
      ...this.config.groups.map((g) => this.tree.groupPath(g.name)),
    ]);
    for (let level = dirname(path); !stops.has(level) && level.startsWith(`${this.tree.rootPath}/`); ) {
      if (await this.hasChildren(level)) return;
      try {
        await this.tree.remove(level, { timeoutMs: 0 });
      } catch {
        return; // in use again (a container starting below it): it stays
      }
      level = dirname(level);
    }
  }

  private async hasChildren(path: string): Promise<boolean> {
    for (const dir of allDirs(this.layout, path)) {
      try {
        if ((await readdir(dir, { withFileTypes: true })).some((entry) => entry.isDirectory())) return true;
      } catch (error) {
        if (errnoCode(error) !== "ENOENT") throw error;
      }
    }
    return false;
  }

  // cleanup() kills everything below the path: refuse anything but a container cgroup of this subtree.
  private checkContainerPath(path: string): void {
    const groups = new Set(this.config.groups.map((g) => this.tree.groupPath(g.name)));
    const inside = path.startsWith(`${this.tree.rootPath}/`) && !path.split("/").includes("..");
    if (!inside || groups.has(path)) {
      throw new Error(`${path} is not a container cgroup below ${this.tree.rootPath}`);
    }
  }
}

/**
 * A memory event (the monitor's counts, absent fields as 0) as the `c_group` notification's
 * `memory` field: fields that did not move are null.
 */
export function toMemoryNotification(counts: Partial<MemoryCounts>): MemoryNotification {
  const moved = (n: number | undefined): number | null => (n ? n : null);
  return {
    low: moved(counts.low),
    high: moved(counts.high),
    max: moved(counts.max),
    oom: moved(counts.oom),
    oom_kill: moved(counts.oom_kill),
    oom_group_kill: moved(counts.oom_group_kill),
  };
}
