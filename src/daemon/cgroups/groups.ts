// Process groups (one parent cgroup and one budget for several containers): pure rules for which
// group a container belongs to, what a group's limits are, and whether one more container may start.
import type { Manifest } from "../../npk/manifest/index.js";
import type { DaemonConfig, GroupConfig } from "../config/schema.js";
import type { CgroupLimits } from "./limits.js";

/** A manifest names a process group that the configuration does not define. */
export class UnknownGroupError extends Error {
  constructor(
    readonly container: string,
    readonly field: "group" | "cgroups.parent",
    readonly group: string,
  ) {
    super(
      `${container}: ${field} names process group "${group}", which is not configured ([groups.${group}])`,
    );
    this.name = "UnknownGroupError";
  }
}

/**
 * The configured group a manifest asks for: Skiff's `group` field (which must name a configured group), else
 * Northstar's `cgroups.parent` when it names a configured group. A `parent` naming anything else is a
 * Northstar placement: a path below Skiff's cgroup (CgroupSupervisor.containerPath).
 */
export function groupOfManifest(
  manifest: Pick<Manifest, "name" | "group" | "cgroups">,
  groups: readonly GroupConfig[],
): GroupConfig | undefined {
  if (manifest.group !== undefined) {
    const group = groups.find((g) => g.name === manifest.group);
    if (group === undefined) throw new UnknownGroupError(manifest.name, "group", manifest.group);
    return group;
  }
  const parent = manifest.cgroups?.parent;
  return parent === undefined ? undefined : groups.find((g) => g.name === parent);
}

/** A group's configured limits as CgroupLimits (applied to the group's parent cgroup). */
export function groupLimits(group: GroupConfig): CgroupLimits {
  const limits: CgroupLimits = {};
  if (group.memory !== undefined) limits.memory = { limit: group.memory };
  const { cpuShares: shares, cpuWeight: weight, cpuQuota: quota, cpuPeriod: period } = group;
  if (shares !== undefined || weight !== undefined || quota !== undefined || period !== undefined) {
    limits.cpu = Object.fromEntries(
      Object.entries({ shares, weight, quota, period }).filter(([, v]) => v !== undefined),
    );
  }
  if (group.pids !== undefined) limits.pids = { max: group.pids };
  return limits;
}

export interface RunningCounts {
  /** Containers running (or starting) now, daemon-wide, not counting the one about to start. */
  running: number;
  /** The same per group name. */
  runningInGroup: ReadonlyMap<string, number>;
}

export interface LimitReached {
  /** The configuration key of the limit: `max_containers` or `groups.<name>.max_containers`. */
  limit: string;
  max: number;
}

/**
 * Whether one more container in `group` (undefined = no group) may start: undefined if it may, else the
 * limit it would exceed. The group's limit is checked first, as the more specific one. Pure.
 */
export function checkLimits(
  counts: RunningCounts,
  group: string | undefined,
  config: Pick<DaemonConfig, "maxContainers" | "groups">,
): LimitReached | undefined {
  if (group !== undefined) {
    const max = config.groups.find((g) => g.name === group)?.maxContainers;
    if (max !== undefined && (counts.runningInGroup.get(group) ?? 0) >= max) {
      return { limit: `groups.${group}.max_containers`, max };
    }
  }
  if (counts.running >= config.maxContainers) return { limit: "max_containers", max: config.maxContainers };
  return undefined;
}

/** The text of a `limit_reached` error. */
export function limitReachedMessage(reached: LimitReached): string {
  return `limit reached: ${reached.limit} allows ${reached.max} running containers`;
}
