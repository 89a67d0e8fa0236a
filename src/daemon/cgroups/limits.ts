// The neutral CgroupLimits type and its translation to v1 or v2 control files (docs/cgroups.md lists the rules).
import type { CgroupLayout } from "./layout.js";
import { controllerDir } from "./paths.js";
import { CgroupFileError, writeControl } from "./fsio.js";

export interface DeviceWeight {
  major: number;
  minor: number;
  /** blkio units, 10..1000. */
  weight: number;
}

export interface DeviceThrottle {
  major: number;
  minor: number;
  /** Bytes or operations per second. */
  rate: number;
}

/** Units follow cgroup v1 / the OCI runtime spec; -1 means unlimited where a limit is allowed to be. */
export interface CgroupLimits {
  memory?: {
    /** Hard limit in bytes. */
    limit?: number;
    /** Soft limit / protection in bytes (v1 soft_limit_in_bytes, v2 memory.low). */
    reservation?: number;
    /** Memory plus swap in bytes (v1 memsw); must be >= limit. */
    swap?: number;
    /** 0..100; v1 only. */
    swappiness?: number;
  };
  cpu?: {
    /** v1 shares, 2..262144. Give shares or weight, not both. */
    shares?: number;
    /** v2 weight, 1..10000. */
    weight?: number;
    /** CFS quota in microseconds per period; -1 means unlimited. */
    quota?: number;
    /** CFS period in microseconds, 1000..1000000. */
    period?: number;
    /** cpuset list syntax, e.g. "0-1,3". */
    cpus?: string;
    mems?: string;
  };
  io?: {
    /** blkio units, 10..1000. */
    weight?: number;
    weightDevice?: DeviceWeight[];
    readBps?: DeviceThrottle[];
    writeBps?: DeviceThrottle[];
    readIops?: DeviceThrottle[];
    writeIops?: DeviceThrottle[];
  };
  pids?: {
    /** Maximum number of tasks; -1 means unlimited. */
    max?: number;
  };
}

export interface CgroupFile {
  controller: string;
  file: string;
  value: string;
  /** The CgroupLimits field this write comes from, for error messages. */
  field: string;
}

export class CgroupLimitError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
    this.name = "CgroupLimitError";
  }
}

/** runc's mapping of cpu.shares [2, 262144] onto cpu.weight [1, 10000]. */
export function sharesToWeight(shares: number): number {
  return 1 + Math.floor(((shares - 2) * 9999) / 262142);
}

/** The inverse of sharesToWeight, for a weight given on a v1 host. Rounds up so that
 *  sharesToWeight(weightToShares(w)) === w. */
export function weightToShares(weight: number): number {
  return 2 + Math.ceil(((weight - 1) * 262142) / 9999);
}

/** runc's mapping of blkio.weight [10, 1000] onto io.weight [1, 10000]. */
export function blkioWeightToIoWeight(weight: number): number {
  return 1 + Math.floor(((weight - 10) * 9999) / 990);
}

/** runc's conversion of a v1 memory+swap limit into a v2 swap-only limit (-1 = max). */
export function memswToSwapMax(memsw: number, memory: number | undefined): number {
  if (memsw === -1) return -1;
  if (memory === undefined || memory === -1) {
    throw new CgroupLimitError("memory.swap", "a swap limit needs a memory limit");
  }
  if (memsw < memory) throw new CgroupLimitError("memory.swap", "memory+swap must be >= memory.limit");
  return memsw - memory;
}

function check(field: string, value: number | undefined, min: number, max: number, unlimited = false): void {
  if (value === undefined) return;
  if (!Number.isSafeInteger(value) || ((value < min || value > max) && !(unlimited && value === -1))) {
    throw new CgroupLimitError(
      field,
      `${value} is not an integer in [${min}, ${max}]${unlimited ? " or -1" : ""}`,
    );
  }
}

function validate(limits: CgroupLimits): void {
  const { memory, cpu, io, pids } = limits;
  const big = Number.MAX_SAFE_INTEGER;
  check("memory.limit", memory?.limit, 1, big, true);
  check("memory.reservation", memory?.reservation, 0, big, true);
  check("memory.swap", memory?.swap, 0, big, true);
  check("memory.swappiness", memory?.swappiness, 0, 100);
  check("cpu.shares", cpu?.shares, 2, 262144);
  check("cpu.weight", cpu?.weight, 1, 10000);
  if (cpu?.shares !== undefined && cpu.weight !== undefined) {
    throw new CgroupLimitError("cpu.weight", "give cpu.shares or cpu.weight, not both");
  }
  check("cpu.quota", cpu?.quota, 1000, big, true);
  check("cpu.period", cpu?.period, 1000, 1_000_000);
  check("io.weight", io?.weight, 10, 1000);
  io?.weightDevice?.forEach((d, i) => check(`io.weightDevice[${i}].weight`, d.weight, 10, 1000));
  check("pids.max", pids?.max, 0, big, true);
}

function need(layout: CgroupLayout, controller: string, field: string): 1 | 2 {
  const mount = layout.controllers.get(controller);
  if (mount === undefined) throw new CgroupLimitError(field, `this host has no ${controller} controller`);
  return mount.version;
}

const max = (value: number): string => (value === -1 ? "max" : String(value));
const device = (d: { major: number; minor: number }): string => `${d.major}:${d.minor}`;

function memoryFiles(layout: CgroupLayout, memory: NonNullable<CgroupLimits["memory"]>): CgroupFile[] {
  const files: CgroupFile[] = [];
  const add = (file: string, value: string, field: string): number =>
    files.push({ controller: "memory", file, value, field });
  if (need(layout, "memory", "memory") === 1) {
    // Order matters to the kernel (memsw >= limit at all times); applyLimits retries a rejected write after
    // the others, which covers both raising and lowering.
    if (memory.limit !== undefined) add("memory.limit_in_bytes", String(memory.limit), "memory.limit");
    if (memory.swap !== undefined) add("memory.memsw.limit_in_bytes", String(memory.swap), "memory.swap");
    if (memory.reservation !== undefined)
      add("memory.soft_limit_in_bytes", String(memory.reservation), "memory.reservation");
    if (memory.swappiness !== undefined)
      add("memory.swappiness", String(memory.swappiness), "memory.swappiness");
    return files;
  }
  if (memory.limit !== undefined) add("memory.max", max(memory.limit), "memory.limit");
  if (memory.swap !== undefined)
    add("memory.swap.max", max(memswToSwapMax(memory.swap, memory.limit)), "memory.swap");
  if (memory.reservation !== undefined) add("memory.low", max(memory.reservation), "memory.reservation");
  // v2 has no per-cgroup swappiness: the field is dropped (documented in docs/cgroups.md).
  return files;
}

function cpuFiles(layout: CgroupLayout, cpu: NonNullable<CgroupLimits["cpu"]>): CgroupFile[] {
  const files: CgroupFile[] = [];
  if (cpu.cpus !== undefined || cpu.mems !== undefined) {
    need(layout, "cpuset", cpu.cpus !== undefined ? "cpu.cpus" : "cpu.mems");
    if (cpu.cpus !== undefined)
      files.push({ controller: "cpuset", file: "cpuset.cpus", value: cpu.cpus, field: "cpu.cpus" });
    if (cpu.mems !== undefined)
      files.push({ controller: "cpuset", file: "cpuset.mems", value: cpu.mems, field: "cpu.mems" });
  }
  const { shares, weight, quota, period } = cpu;
  if (shares === undefined && weight === undefined && quota === undefined && period === undefined)
    return files;
  const add = (file: string, value: string, field: string): number =>
    files.push({ controller: "cpu", file, value, field });
  if (need(layout, "cpu", "cpu") === 1) {
    if (shares !== undefined) add("cpu.shares", String(shares), "cpu.shares");
    if (weight !== undefined) add("cpu.shares", String(weightToShares(weight)), "cpu.weight");
    if (period !== undefined) add("cpu.cfs_period_us", String(period), "cpu.period");
    if (quota !== undefined) add("cpu.cfs_quota_us", String(quota), "cpu.quota");
    return files;
  }
  if (shares !== undefined) add("cpu.weight", String(sharesToWeight(shares)), "cpu.shares");
  if (weight !== undefined) add("cpu.weight", String(weight), "cpu.weight");
  if (quota !== undefined || period !== undefined) {
    // cpu.max is "$MAX $PERIOD"; writing only "$MAX" keeps the current period.
    const value = period === undefined ? max(quota ?? -1) : `${max(quota ?? -1)} ${period}`;
    add("cpu.max", value, quota !== undefined ? "cpu.quota" : "cpu.period");
  }
  return files;
}

function ioFiles(layout: CgroupLayout, io: NonNullable<CgroupLimits["io"]>): CgroupFile[] {
  const throttles = [
    ["readBps", "read_bps_device", "rbps"],
    ["writeBps", "write_bps_device", "wbps"],
    ["readIops", "read_iops_device", "riops"],
    ["writeIops", "write_iops_device", "wiops"],
  ] as const;
  const files: CgroupFile[] = [];
  const anything =
    io.weight !== undefined ||
    (io.weightDevice?.length ?? 0) > 0 ||
    throttles.some(([k]) => (io[k]?.length ?? 0) > 0);
  if (!anything) return files;
  if (layout.controllers.get("blkio")?.version === 1) {
    const add = (file: string, value: string, field: string): number =>
      files.push({ controller: "blkio", file, value, field });
    if (io.weight !== undefined) add("blkio.weight", String(io.weight), "io.weight");
    io.weightDevice?.forEach((d, i) =>
      add("blkio.weight_device", `${device(d)} ${d.weight}`, `io.weightDevice[${i}]`),
    );
    for (const [key, file] of throttles) {
      io[key]?.forEach((d, i) => add(`blkio.throttle.${file}`, `${device(d)} ${d.rate}`, `io.${key}[${i}]`));
    }
    return files;
  }
  if (need(layout, "io", "io") === 1)
    throw new CgroupLimitError("io", "the io controller is expected on cgroup v2");
  const add = (value: string, field: string, file = "io.weight"): number =>
    files.push({ controller: "io", file, value, field });
  if (io.weight !== undefined) add(`default ${blkioWeightToIoWeight(io.weight)}`, "io.weight");
  io.weightDevice?.forEach((d, i) =>
    add(`${device(d)} ${blkioWeightToIoWeight(d.weight)}`, `io.weightDevice[${i}]`),
  );
  // io.max takes one line per device with any of rbps/wbps/riops/wiops.
  const perDevice = new Map<string, string[]>();
  for (const [key, , v2key] of throttles) {
    for (const d of io[key] ?? [])
      perDevice.set(device(d), [...(perDevice.get(device(d)) ?? []), `${v2key}=${d.rate}`]);
  }
  for (const [dev, settings] of perDevice)
    add(`${dev} ${settings.join(" ")}`, `io (device ${dev})`, "io.max");
  return files;
}

/** The control-file writes that put `limits` in place on this host layout, in write order. Pure. */
export function limitsToFiles(layout: CgroupLayout, limits: CgroupLimits): CgroupFile[] {
  validate(limits);
  const files: CgroupFile[] = [];
  if (limits.memory !== undefined) files.push(...memoryFiles(layout, limits.memory));
  if (limits.cpu !== undefined) files.push(...cpuFiles(layout, limits.cpu));
  if (limits.io !== undefined) files.push(...ioFiles(layout, limits.io));
  if (limits.pids?.max !== undefined) {
    need(layout, "pids", "pids.max");
    files.push({ controller: "pids", file: "pids.max", value: max(limits.pids.max), field: "pids.max" });
  }
  return files;
}

/** Writes `limits` to the cgroup at absolute path `cgroupPath` (used for process-group parents). */
export async function applyLimits(
  layout: CgroupLayout,
  cgroupPath: string,
  limits: CgroupLimits,
): Promise<void> {
  await applyFiles(layout, cgroupPath, limitsToFiles(layout, limits));
}

/**
 * Writes control files to the cgroup at absolute path `cgroupPath`, in order (limits, or a
 * manifest's attrs into a container's cgroup). Throws CgroupLimitError naming the file's field.
 */
export async function applyFiles(
  layout: CgroupLayout,
  cgroupPath: string,
  files: CgroupFile[],
): Promise<void> {
  let pending = files;
  // Some pairs must be written in an order that depends on the current values (memsw >= limit in v1,
  // quota vs. a parent's period). A write the kernel rejects with EINVAL is retried once after the others.
  for (let pass = 0; pending.length > 0; pass++) {
    const rejected: { file: CgroupFile; error: CgroupFileError }[] = [];
    for (const file of pending) {
      const dir = controllerDir(layout, file.controller, cgroupPath);
      if (dir === undefined)
        throw new CgroupLimitError(file.field, `this host has no ${file.controller} controller`);
      try {
        await writeControl(`${dir}/${file.file}`, file.value);
      } catch (error) {
        if (!(error instanceof CgroupFileError) || error.code !== "EINVAL" || pass > 0) {
          throw new CgroupLimitError(file.field, error instanceof Error ? error.message : String(error));
        }
        rejected.push({ file, error });
      }
    }
    if (rejected.length === pending.length) {
      const first = rejected[0]!;
      throw new CgroupLimitError(first.file.field, first.error.message);
    }
    pending = rejected.map((r) => r.file);
  }
}
