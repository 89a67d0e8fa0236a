// Translation of a Northstar manifest's `cgroups` section into the neutral CgroupLimits (used for
// process-group parents; a container's own limits reach runc through the OCI spec, src/daemon/oci).
import type { CGroups, BlkIoDeviceThrottleResource } from "../../npk/manifest/index.js";
import { CgroupLimitError, type CgroupFile, type CgroupLimits, type DeviceThrottle } from "./limits.js";

const throttles = (list: BlkIoDeviceThrottleResource[] | undefined): DeviceThrottle[] | undefined =>
  list === undefined || list.length === 0
    ? undefined
    : list.map(({ major, minor, rate }) => ({ major, minor, rate }));

/**
 * Maps a manifest `cgroups` section onto CgroupLimits. Not applied, each with a warning pushed to `warnings`
 * (docs/cgroups.md): kernel and kernel-TCP memory limits (deprecated by the kernel), realtime cpu fields
 * (Northstar documents them as no-ops), blkio leaf weights (CFQ only, gone from current kernels). `attrs`
 * are not limits either: attrFilesFromManifestCgroups turns them into control-file writes. `parent` and
 * `oom_monitor` are read by the caller directly.
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
  return limits;
}

/** A control file name: `<controller>.<name>`, nothing that could leave the cgroup's directory. */
const ATTR_NAME = /^[a-z]+\.[A-Za-z0-9_.]+$/;
const MAX_ATTR_VALUE_BYTES = 4096;

/**
 * The writes of the manifest's free-form `cpu.attrs` and `memory.attrs` into the container's own
 * cgroup, as Northstar's cgroups-rs does (file name = key, content = value). A key must be one of
 * its controller's own files (`cpu.*` in `cpu`, `memory.*` in `memory`): no `cgroup.*` files, no
 * other controller, no path separators or `..`. Whether the kernel has the file decides the rest
 * (the write fails and the start with it). `blkio.attrs` are ignored with a warning: Northstar
 * 0.9.2 drops them too (its blkio conversion never passes them on). Pure; throws
 * CgroupLimitError naming the offending key.
 */
export function attrFilesFromManifestCgroups(
  cgroups: CGroups | undefined,
  warnings: string[] = [],
): CgroupFile[] {
  if (cgroups === undefined) return [];
  if (cgroups.blkio?.attrs !== undefined) {
    warnings.push("cgroups.blkio.attrs: not applied (Northstar 0.9.2 ignores blkio attrs too)");
  }
  const files: CgroupFile[] = [];
  for (const controller of ["cpu", "memory"] as const) {
    for (const [file, value] of Object.entries(cgroups[controller]?.attrs ?? {})) {
      const field = `cgroups.${controller}.attrs.${file}`;
      if (!ATTR_NAME.test(file) || !file.startsWith(`${controller}.`) || file.includes("..")) {
        throw new CgroupLimitError(
          field,
          `not a file of the ${controller} controller (${controller}.<name>)`,
        );
      }
      if (Buffer.byteLength(value) > MAX_ATTR_VALUE_BYTES || value.includes("\0")) {
        throw new CgroupLimitError(field, `value must be at most ${MAX_ATTR_VALUE_BYTES} bytes, no NUL`);
      }
      files.push({ controller, file, value, field });
    }
  }
  return files;
}

function strip<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
