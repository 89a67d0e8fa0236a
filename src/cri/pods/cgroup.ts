/**
 * A pod's cgroup: `/<root>/cri/<id>` on every hierarchy (the daemon's cgroup layer creates and
 * removes it), with the pod's CPU and memory limits; the containers of the pod get their cgroups
 * beneath it. `PodSandboxRef.cgroupParent` is the path relative to Skiff's root, `cri/<id>`.
 */
import type { CgroupLayout } from "../../daemon/cgroups/layout.js";
import { applyLimits, type CgroupLimits } from "../../daemon/cgroups/limits.js";
import { readStats, type CgroupStats } from "../../daemon/cgroups/cgroup-stats.js";
import { CgroupTree } from "../../daemon/cgroups/tree.js";
import type { PodResources } from "./spec.js";

/** The level below Skiff's cgroup root that holds every pod. */
export const PODS_CGROUP = "cri";

/** CgroupLimits of a pod's resources (pure). Unset resources are reset to unlimited on update. */
export function podLimits(resources: PodResources, update = false): CgroupLimits {
  const limits: CgroupLimits = {};
  if (resources.memoryLimit !== undefined || update) limits.memory = { limit: resources.memoryLimit ?? -1 };
  const cpu: NonNullable<CgroupLimits["cpu"]> = {};
  if (resources.cpuShares !== undefined) cpu.shares = resources.cpuShares;
  if (resources.cpuQuota !== undefined || update) cpu.quota = resources.cpuQuota ?? -1;
  if (resources.cpuPeriod !== undefined) cpu.period = resources.cpuPeriod;
  if (resources.cpusetCpus !== undefined) cpu.cpus = resources.cpusetCpus;
  if (resources.cpusetMems !== undefined) cpu.mems = resources.cpusetMems;
  if (Object.keys(cpu).length > 0) limits.cpu = cpu;
  return limits;
}

export class PodCgroups {
  private readonly tree: CgroupTree;

  constructor(
    readonly layout: CgroupLayout,
    rootName: string,
  ) {
    this.tree = new CgroupTree(layout, rootName);
  }

  /** Relative to Skiff's root: what PodSandboxRef.cgroupParent says. */
  parentOf(id: string): string {
    return `${PODS_CGROUP}/${id}`;
  }

  /** The absolute cgroup path, `/<root>/cri/<id>`. */
  pathOf(id: string): string {
    return `${this.tree.rootPath}/${this.parentOf(id)}`;
  }

  async create(id: string, resources: PodResources): Promise<void> {
    await this.tree.create(this.pathOf(id));
    await applyLimits(this.layout, this.pathOf(id), podLimits(resources));
  }

  async update(id: string, resources: PodResources): Promise<void> {
    await applyLimits(this.layout, this.pathOf(id), podLimits(resources, true));
  }

  /** Removes the pod's cgroup (missing is fine; fails while containers' cgroups remain below it). */
  async remove(id: string): Promise<void> {
    await this.tree.remove(this.pathOf(id));
  }

  /** Synchronous reads of a dozen cgroupfs files (docs/cgroups.md says why). */
  stats(id: string): CgroupStats {
    return readStats(this.layout, this.pathOf(id));
  }
}
