// A cgroup's counters, read from its control files on either cgroup version, as plain numbers
// (CgroupStats). process-statistics.ts turns them into the wire's `process.statistics`.
import type { CgroupLayout } from "./layout.js";
import { controllerDir, unifiedDir } from "./paths.js";
import { parseFlatKeyed, parseLimit, readOptionalTextSync } from "./fsio.js";

export interface MemoryStats {
  usage: number;
  /** Highest usage seen (v1 max_usage_in_bytes, v2 memory.peak); undefined if the kernel lacks it. */
  peak: number | undefined;
  /** null = unlimited. */
  limit: number | null;
  /** Anonymous memory (v1 total_rss, v2 anon). */
  anon: number;
  /** Page cache (v1 total_cache, v2 file). */
  file: number;
  /** Swapped out (v1 total_swap, v2 memory.swap.current); 0 without swap accounting. */
  swap: number;
  pgfault: number;
  pgmajfault: number;
  /** memory.stat as the kernel writes it (keys differ between v1 and v2). */
  stat: Record<string, number>;
}

export interface CpuStats {
  usageNs: number;
  periods: number;
  throttledPeriods: number;
  throttledNs: number;
}

export interface PidsStats {
  current: number;
  /** null = unlimited. */
  limit: number | null;
}

export interface IoStats {
  readBytes: number;
  writeBytes: number;
  readOps: number;
  writeOps: number;
}

/** A section is undefined when the host lacks the controller or the cgroup does not exist there. */
export interface CgroupStats {
  memory: MemoryStats | undefined;
  cpu: CpuStats | undefined;
  pids: PidsStats | undefined;
  io: IoStats | undefined;
}

/**
 * Reads all statistics of the cgroup at absolute path `cgroupPath`. Synchronous on purpose: about ten small
 * cgroupfs files, roughly 0.1 ms in total, where the asynchronous API costs about 8x more (see
 * readOptionalTextSync). For many containers, call it once per container between other work.
 */
export function readStats(layout: CgroupLayout, cgroupPath: string): CgroupStats {
  return {
    memory: memoryStats(layout, cgroupPath),
    cpu: cpuStats(layout, cgroupPath),
    pids: pidsStats(layout, cgroupPath),
    io: ioStats(layout, cgroupPath),
  };
}

type Reader = (file: string) => string | undefined;

function reader(
  layout: CgroupLayout,
  controller: string,
  cgroupPath: string,
): { version: 1 | 2; read: Reader } | undefined {
  const version = layout.controllers.get(controller)?.version;
  const dir = controllerDir(layout, controller, cgroupPath);
  if (version === undefined || dir === undefined) return undefined;
  return { version, read: (file) => readOptionalTextSync(`${dir}/${file}`) };
}

const num = (text: string | undefined): number => (text === undefined ? 0 : Number(text));

function memoryStats(layout: CgroupLayout, cgroupPath: string): MemoryStats | undefined {
  const memory = reader(layout, "memory", cgroupPath);
  if (memory === undefined) return undefined;
  const { version, read } = memory;
  const names =
    version === 1
      ? ["memory.usage_in_bytes", "memory.max_usage_in_bytes", "memory.limit_in_bytes", "memory.stat"]
      : ["memory.current", "memory.peak", "memory.max", "memory.stat", "memory.swap.current"];
  const [usage, peak, limit, statText, swapCurrent] = names.map(read);
  if (usage === undefined || statText === undefined) return undefined;
  const stat = parseFlatKeyed(statText);
  const key = (v1: string, v2: string): number => stat.get(version === 1 ? v1 : v2) ?? 0;
  return {
    usage: Number(usage),
    peak: peak === undefined ? undefined : Number(peak),
    limit: limit === undefined ? null : parseLimit(limit),
    anon: key("total_rss", "anon"),
    file: key("total_cache", "file"),
    swap: version === 1 ? (stat.get("total_swap") ?? 0) : num(swapCurrent),
    pgfault: key("total_pgfault", "pgfault"),
    pgmajfault: key("total_pgmajfault", "pgmajfault"),
    stat: Object.fromEntries(stat),
  };
}

function cpuStats(layout: CgroupLayout, cgroupPath: string): CpuStats | undefined {
  // v1 splits usage (cpuacct) from throttling (cpu). cgroup2 has cpu.stat usage even without the cpu
  // controller enabled, so a v2 cgroup always has at least the usage.
  const cpu = reader(layout, "cpu", cgroupPath);
  if (cpu?.version === 1) {
    const cpuacct = reader(layout, "cpuacct", cgroupPath);
    const usage = cpuacct?.read("cpuacct.usage");
    const statText = cpu.read("cpu.stat");
    if (usage === undefined && statText === undefined) return undefined;
    const stat = parseFlatKeyed(statText ?? "");
    return {
      usageNs: num(usage),
      periods: stat.get("nr_periods") ?? 0,
      throttledPeriods: stat.get("nr_throttled") ?? 0,
      throttledNs: stat.get("throttled_time") ?? 0,
    };
  }
  const dir = unifiedDir(layout, cgroupPath);
  const statText = dir === undefined ? undefined : readOptionalTextSync(`${dir}/cpu.stat`);
  if (statText === undefined) return undefined;
  const stat = parseFlatKeyed(statText);
  return {
    usageNs: (stat.get("usage_usec") ?? 0) * 1000,
    periods: stat.get("nr_periods") ?? 0,
    throttledPeriods: stat.get("nr_throttled") ?? 0,
    throttledNs: (stat.get("throttled_usec") ?? 0) * 1000,
  };
}

function pidsStats(layout: CgroupLayout, cgroupPath: string): PidsStats | undefined {
  const pids = reader(layout, "pids", cgroupPath);
  if (pids === undefined) return undefined;
  const current = pids.read("pids.current");
  const limit = pids.read("pids.max");
  if (current === undefined) return undefined;
  return { current: Number(current), limit: limit === undefined ? null : parseLimit(limit) };
}

function ioStats(layout: CgroupLayout, cgroupPath: string): IoStats | undefined {
  const blkio = reader(layout, "blkio", cgroupPath);
  if (blkio?.version === 1) {
    const bytes = blkio.read("blkio.throttle.io_service_bytes_recursive");
    const ops = blkio.read("blkio.throttle.io_serviced_recursive");
    if (bytes === undefined && ops === undefined) return undefined;
    const b = sumV1Blkio(bytes ?? "");
    const o = sumV1Blkio(ops ?? "");
    return { readBytes: b.read, writeBytes: b.write, readOps: o.read, writeOps: o.write };
  }
  const io = reader(layout, "io", cgroupPath);
  const text = io === undefined ? undefined : io.read("io.stat");
  if (text === undefined) return undefined;
  return parseIoStat(text);
}

/** Sums the per-device "MAJ:MIN Read N" / "MAJ:MIN Write N" lines of a v1 blkio statistics file. */
export function sumV1Blkio(text: string): { read: number; write: number } {
  let read = 0;
  let write = 0;
  for (const line of text.split("\n")) {
    const [dev, op, value] = line.trim().split(/\s+/);
    if (dev === undefined || !dev.includes(":") || value === undefined) continue;
    if (op === "Read") read += Number(value);
    else if (op === "Write") write += Number(value);
  }
  return { read, write };
}

/** Sums the per-device "MAJ:MIN rbytes=N wbytes=N rios=N wios=N ..." lines of v2 io.stat. */
export function parseIoStat(text: string): IoStats {
  const total: IoStats = { readBytes: 0, writeBytes: 0, readOps: 0, writeOps: 0 };
  const fields: Record<string, keyof IoStats> = {
    rbytes: "readBytes",
    wbytes: "writeBytes",
    rios: "readOps",
    wios: "writeOps",
  };
  for (const line of text.split("\n")) {
    for (const pair of line.trim().split(/\s+/).slice(1)) {
      const [key, value] = pair.split("=");
      const field = key === undefined ? undefined : fields[key];
      if (field !== undefined) total[field] += Number(value);
    }
  }
  return total;
}
