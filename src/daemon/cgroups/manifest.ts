// Translation of a Northstar manifest's `cgroups` section into the neutral CgroupLimits (used for
// process-group parents; a container's own limits reach runc through the OCI spec, src/daemon/oci).
import type { CGroups, BlkIoDeviceThrottleResource } from "../../npk/manifest/index.js";
import type { CgroupLimits, DeviceThrottle } from "./limits.js";

const throttles = (list: BlkIoDeviceThrottleResource[] | undefined): DeviceThrottle[] | undefined =>
  list === undefined || list.length === 0
    ? undefined
    : list.map(({ major, minor, rate }) => ({ major, minor, rate }));

/**
 * Maps a manifest `cgroups` section onto CgroupLimits. Not applied, each with a warning pushed to `warnings`
 * (docs/cgroups.md): kernel and kernel-TCP memory limits (deprecated by the kernel), realtime cpu fields
 * (Northstar documents them as no-ops), blkio leaf weights (CFQ only, gone from current kernels), free-form
 * `attrs` (raw v1 file names with no v2 meaning). `parent` and `oom_monitor` are not limits: the caller
 * reads them directly.
 */
export function limitsFromManifestCgroups(cgroups: CGroups, warnings: string[] = []): CgroupLimits {
  const limits: CgroupLimits = {};
  const { memory, cpu, blkio, pids } = cgroups;
  const ignored = (field: string, why: string): void => void warnings.push(`cgroups.${field}: ${why}`);
  if (memory !== undefined) {
    if (memory.kernel_memory_limit !== undefined)
      ignored("memory.kernel_memory_limit", "deprecated, not applied");
    if (memory.kernel_tcp_memory_limit !== undefined) {
      ignored("memory.kernel_tcp_memory_limit", "deprecated, not applied");
    }
    limits.memory = strip({
      limit: memory.memory_hard_limit,
      reservation: memory.memory_soft_limit,
      swap: memory.memory_swap_limit,
      swappiness: memory.swappiness,
    });
  }
  if (cpu !== undefined) {
    if (cpu.realtime_runtime !== undefined || cpu.realtime_period !== undefined) {
      ignored("cpu.realtime_runtime", "realtime cpu limits are not applied");
    }
    limits.cpu = strip({
      shares: cpu.shares,
      quota: cpu.quota,
      period: cpu.period,
      cpus: cpu.cpus,
      mems: cpu.mems,
    });
  }
  if (blkio !== undefined) {
    if (blkio.leaf_weight !== undefined || blkio.weight_device.some((d) => d.leaf_weight !== undefined)) {
      ignored("blkio.leaf_weight", "leaf weights no longer exist in the kernel, not applied");
    }
    const weightDevice = blkio.weight_device.flatMap(({ major, minor, weight }) =>
      weight === undefined ? [] : [{ major, minor, weight }],
    );
    limits.io = strip({
      weight: blkio.weight,
      weightDevice: weightDevice.length > 0 ? weightDevice : undefined,
      readBps: throttles(blkio.throttle_read_bps_device),
      writeBps: throttles(blkio.throttle_write_bps_device),
      readIops: throttles(blkio.throttle_read_iops_device),
      writeIops: throttles(blkio.throttle_write_iops_device),
    });
  }
  if (pids !== undefined) limits.pids = { max: pids.max };
  for (const section of ["memory", "cpu", "blkio"] as const) {
    if (cgroups[section]?.attrs !== undefined) {
      ignored(`${section}.attrs`, "free-form cgroup attributes have no v2 equivalent and are not applied");
    }
  }
  return limits;
}

function strip<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
