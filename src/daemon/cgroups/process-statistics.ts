// The wire shape of `process.statistics` in `inspect` responses, built from a cgroup's CgroupStats.
// Keys are snake_case like the rest of Northstar's JSON; every value is JSON (no undefined, null = unlimited).
import type { CgroupStats } from "./cgroup-stats.js";

export interface MemoryStatistics {
  /** Bytes in use now. */
  usage: number;
  /** Highest usage seen, bytes; null if the kernel does not report it. */
  peak: number | null;
  /** Hard limit in bytes; null = unlimited. */
  limit: number | null;
  /** Anonymous memory, bytes. */
  anon: number;
  /** Page cache, bytes. */
  file: number;
  /** Swapped out, bytes (0 without swap accounting). */
  swap: number;
  /** The kernel's memory.stat as written (v1 and v2 keys differ). */
  stat: Record<string, number>;
}

export interface CpuStatistics {
  /** CPU time used, nanoseconds. */
  usage_ns: number;
  /** CFS enforcement periods that have elapsed (0 without a quota). */
  periods: number;
  /** Periods in which the cgroup was throttled. */
  throttled_periods: number;
  /** Time spent throttled, nanoseconds. */
  throttled_ns: number;
}

export interface PidsStatistics {
  current: number;
  /** null = unlimited. */
  limit: number | null;
}

export interface IoStatistics {
  read_bytes: number;
  write_bytes: number;
  read_ops: number;
  write_ops: number;
}

/** A section is absent when the host lacks the controller or the cgroup is gone. */
export interface ProcessStatistics {
  memory?: MemoryStatistics;
  cpu?: CpuStatistics;
  pids?: PidsStatistics;
  io?: IoStatistics;
}

/** Pure: CgroupStats (camelCase, undefined sections) to the wire shape. */
export function toProcessStatistics(stats: CgroupStats): ProcessStatistics {
  const out: ProcessStatistics = {};
  const { memory, cpu, pids, io } = stats;
  if (memory !== undefined) {
    out.memory = {
      usage: memory.usage,
      peak: memory.peak ?? null,
      limit: memory.limit,
      anon: memory.anon,
      file: memory.file,
      swap: memory.swap,
      stat: memory.stat,
    };
  }
  if (cpu !== undefined) {
    out.cpu = {
      usage_ns: cpu.usageNs,
      periods: cpu.periods,
      throttled_periods: cpu.throttledPeriods,
      throttled_ns: cpu.throttledNs,
    };
  }
  if (pids !== undefined) out.pids = { current: pids.current, limit: pids.limit };
  if (io !== undefined) {
    out.io = {
      read_bytes: io.readBytes,
      write_bytes: io.writeBytes,
      read_ops: io.readOps,
      write_ops: io.writeOps,
    };
  }
  return out;
}
