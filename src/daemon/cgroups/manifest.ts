// Translation of a Northstar manifest's `cgroups` section into the neutral CgroupLimits.
import { CgroupLimitError, type CgroupLimits, type DeviceThrottle } from "./limits.js";

interface ManifestThrottle {
  major: number;
  minor: number;
  rate: number;
}

/** The `cgroups` section of a Northstar 0.9 manifest, field names as they appear in manifest.yaml. */
export interface ManifestCgroups {
  parent?: string;
  blkio?: {
    weight?: number;
    leaf_weight?: number;
    weight_device?: { major: number; minor: number; weight?: number; leaf_weight?: number }[];
    throttle_read_bps_device?: ManifestThrottle[];
    throttle_read_iops_device?: ManifestThrottle[];
    throttle_write_bps_device?: ManifestThrottle[];
    throttle_write_iops_device?: ManifestThrottle[];
    attrs?: Record<string, string>;
  };
  cpu?: {
    cpus?: string;
    mems?: string;
    shares?: number;
    quota?: number;
    period?: number;
    realtime_runtime?: number;
    realtime_period?: number;
    attrs?: Record<string, string>;
  };
  memory?: {
    oom_monitor?: boolean;
    kernel_memory_limit?: number;
    memory_hard_limit?: number;
    memory_soft_limit?: number;
    kernel_tcp_memory_limit?: number;
    memory_swap_limit?: number;
    swappiness?: number;
    attrs?: Record<string, string>;
  };
}

function rejectAttrs(field: string, attrs: Record<string, string> | undefined): void {
  if (attrs !== undefined && Object.keys(attrs).length > 0) {
    // Raw attributes name v1 files directly and cannot be translated to v2; silently dropping them would
    // hide a limit the package author asked for.
    throw new CgroupLimitError(field, "raw controller attributes are not supported by Skiff");
  }
}

const throttles = (list: ManifestThrottle[] | undefined): DeviceThrottle[] | undefined =>
  list === undefined || list.length === 0
    ? undefined
    : list.map(({ major, minor, rate }) => ({ major, minor, rate }));

/**
 * Maps a manifest `cgroups` section onto CgroupLimits. Dropped on purpose (docs/cgroups.md): kernel and
 * kernel-TCP memory limits (deprecated by the kernel), realtime cpu fields (Northstar documents them as
 * no-ops), blkio leaf weights (CFQ only, gone from current kernels). `parent` and `oom_monitor` are not
 * limits: the caller reads them directly.
 */
export function limitsFromManifestCgroups(cgroups: ManifestCgroups): CgroupLimits {
  const limits: CgroupLimits = {};
  const { memory, cpu, blkio } = cgroups;
  if (memory !== undefined) {
    rejectAttrs("cgroups.memory.attrs", memory.attrs);
    limits.memory = strip({
      limit: memory.memory_hard_limit,
      reservation: memory.memory_soft_limit,
      swap: memory.memory_swap_limit,
      swappiness: memory.swappiness,
    });
  }
  if (cpu !== undefined) {
    rejectAttrs("cgroups.cpu.attrs", cpu.attrs);
    limits.cpu = strip({
      shares: cpu.shares,
      quota: cpu.quota,
      period: cpu.period,
      cpus: cpu.cpus,
      mems: cpu.mems,
    });
  }
  if (blkio !== undefined) {
    rejectAttrs("cgroups.blkio.attrs", blkio.attrs);
    const weightDevice = (blkio.weight_device ?? []).flatMap(({ major, minor, weight }) =>
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
  return limits;
}

function strip<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
