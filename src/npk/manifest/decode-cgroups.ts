import { joinPath } from "./errors.js";
import { type Raw, type RawObject, type Reader, readIntegers, setIfDefined } from "./reader.js";
import type {
  BlkIoDeviceResource,
  BlkIoDeviceThrottleResource,
  BlkIoResources,
  CGroups,
  CpuResources,
  MemoryResources,
} from "./types.js";

const U16_MAX = 65_535;
const I64_MIN = -Number.MAX_SAFE_INTEGER;

export function decodeCgroups(read: Reader, value: Raw): CGroups | undefined {
  // Northstar's CGroups structs have no deny_unknown_fields: unknown keys are ignored, here and in
  // every section below (Skiff's own `pids` stays strict).
  const raw = read.tolerantObject(value, "cgroups");
  if (raw === undefined) return undefined;
  const out: CGroups = {};
  if (raw.parent != null) setIfDefined(out, "parent", read.string(raw.parent, "cgroups.parent"));
  if (raw.blkio != null) setIfDefined(out, "blkio", decodeBlkio(read, raw.blkio));
  if (raw.cpu != null) setIfDefined(out, "cpu", decodeCpu(read, raw.cpu));
  if (raw.memory != null) setIfDefined(out, "memory", decodeMemory(read, raw.memory));
  if (raw.pids != null) {
    const pids = read.object(raw.pids, "cgroups.pids", ["max"], ["max"]);
    const max = pids?.max === undefined ? undefined : read.integer(pids.max, "cgroups.pids.max", 1);
    if (max !== undefined) out.pids = { max };
  }
  return out;
}

/** Reads the optional integer fields `spec` of `raw` into `out`, in the order given. */
function attrs(read: Reader, raw: RawObject, path: string): Record<string, string> | undefined {
  if (raw.attrs == null) return undefined;
  const map = read.stringMap(raw.attrs, joinPath(path, "attrs"));
  return map === undefined || Object.keys(map).length === 0 ? undefined : map;
}

const THROTTLE_LISTS = [
  "throttle_read_bps_device",
  "throttle_read_iops_device",
  "throttle_write_bps_device",
  "throttle_write_iops_device",
] as const;

function decodeBlkio(read: Reader, value: Raw): BlkIoResources | undefined {
  const path = "cgroups.blkio";
  const raw = read.tolerantObject(value, path);
  if (raw === undefined) return undefined;
  const out = {} as BlkIoResources;
  readIntegers(read, raw, path, out, [
    ["weight", 0, U16_MAX],
    ["leaf_weight", 0, U16_MAX],
  ]);
  const list = <T extends object>(
    key: string,
    required: string[],
    spec: [keyof T & string, number, number][],
  ) => {
    const items = raw[key] == null ? [] : (read.array(raw[key], joinPath(path, key)) ?? []);
    return items.flatMap((item, i) => {
      const itemPath = joinPath(joinPath(path, key), i);
      const body = read.tolerantObject(item, itemPath, required);
      if (body === undefined) return [];
      const entry = {} as T;
      readIntegers(read, body, itemPath, entry, spec);
      return [entry];
    });
  };
  out.weight_device = list<BlkIoDeviceResource>(
    "weight_device",
    ["major", "minor"],
    [
      ["major", 0, Number.MAX_SAFE_INTEGER],
      ["minor", 0, Number.MAX_SAFE_INTEGER],
      ["weight", 0, U16_MAX],
      ["leaf_weight", 0, U16_MAX],
    ],
  );
  for (const key of THROTTLE_LISTS) {
    out[key] = list<BlkIoDeviceThrottleResource>(
      key,
      ["major", "minor", "rate"],
      [
        ["major", 0, Number.MAX_SAFE_INTEGER],
        ["minor", 0, Number.MAX_SAFE_INTEGER],
        ["rate", 0, Number.MAX_SAFE_INTEGER],
      ],
    );
  }
  setIfDefined(out, "attrs", attrs(read, raw, path));
  return out;
}

function decodeCpu(read: Reader, value: Raw): CpuResources | undefined {
  const path = "cgroups.cpu";
  const raw = read.tolerantObject(value, path);
  if (raw === undefined) return undefined;
  const out: CpuResources = {};
  if (raw.cpus != null) setIfDefined(out, "cpus", read.string(raw.cpus, joinPath(path, "cpus")));
  if (raw.mems != null) setIfDefined(out, "mems", read.string(raw.mems, joinPath(path, "mems")));
  readIntegers(read, raw, path, out, [
    ["shares", 0, Number.MAX_SAFE_INTEGER],
    ["quota", I64_MIN, Number.MAX_SAFE_INTEGER],
    ["period", 0, Number.MAX_SAFE_INTEGER],
    ["realtime_runtime", I64_MIN, Number.MAX_SAFE_INTEGER],
    ["realtime_period", 0, Number.MAX_SAFE_INTEGER],
  ]);
  setIfDefined(out, "attrs", attrs(read, raw, path));
  return out;
}

function decodeMemory(read: Reader, value: Raw): MemoryResources | undefined {
  const path = "cgroups.memory";
  const limits = [
    "kernel_memory_limit",
    "memory_hard_limit",
    "memory_soft_limit",
    "kernel_tcp_memory_limit",
    "memory_swap_limit",
  ] as const;
  const raw = read.tolerantObject(value, path);
  if (raw === undefined) return undefined;
  const out: MemoryResources = { oom_monitor: false };
  if (raw.oom_monitor != null)
    out.oom_monitor = read.boolean(raw.oom_monitor, joinPath(path, "oom_monitor")) ?? false;
  readIntegers(read, raw, path, out, [
    ...limits.map((key): [(typeof limits)[number], number, number] => [
      key,
      I64_MIN,
      Number.MAX_SAFE_INTEGER,
    ]),
    ["swappiness", 0, Number.MAX_SAFE_INTEGER],
  ]);
  setIfDefined(out, "attrs", attrs(read, raw, path));
  return out;
}
