import type { CGroups } from "../../npk/manifest/index.js";
import type { OciDeviceRule, OciResources } from "./types.js";

/** Device cgroup: deny everything, then allow the minimal /dev nodes, /dev/ptmx and the ptys. */
const DEVICE_RULES: readonly OciDeviceRule[] = [
  { allow: false, access: "rwm" },
  ...[
    [1, 3],
    [1, 5],
    [1, 7],
    [1, 8],
    [1, 9],
    [5, 0],
    [5, 2],
  ].map(
    ([major, minor]): OciDeviceRule => ({
      allow: true,
      type: "c",
      major: major!,
      minor: minor!,
      access: "rwm",
    }),
  ),
  { allow: true, type: "c", major: 136, access: "rwm" },
];

/** Copies the defined entries of `pairs` ([OCI key, value]) into a new object, or undefined if none. */
function defined<T extends object>(pairs: [keyof T, unknown][]): T | undefined {
  const out = {} as Record<keyof T, unknown>;
  for (const [key, value] of pairs) if (value !== undefined) out[key] = value;
  return Object.keys(out).length === 0 ? undefined : (out as T);
}

/**
 * Maps manifest `cgroups` to OCI linux.resources (cgroup v1 semantics, what runc applies on this
 * hybrid host). `parent` is not mapped: the caller decides the cgroups path.
 */
export function buildResources(cgroups: CGroups | undefined, warnings: string[]): OciResources {
  const resources: OciResources = { devices: [...DEVICE_RULES] };
  if (cgroups === undefined) return resources;
  const { memory, cpu, blkio, pids } = cgroups;
  if (memory !== undefined) {
    if (memory.kernel_memory_limit !== undefined) {
      warnings.push(
        "cgroups.memory.kernel_memory_limit: kernel memory limits are deprecated and not applied",
      );
    }
    const mapped = defined<NonNullable<OciResources["memory"]>>([
      ["limit", memory.memory_hard_limit],
      ["reservation", memory.memory_soft_limit],
      ["swap", memory.memory_swap_limit],
      ["kernelTCP", memory.kernel_tcp_memory_limit],
      ["swappiness", memory.swappiness],
    ]);
    if (mapped !== undefined) resources.memory = mapped;
  }
  if (cpu !== undefined) {
    const mapped = defined<NonNullable<OciResources["cpu"]>>([
      ["shares", cpu.shares],
      ["quota", cpu.quota],
      ["period", cpu.period],
      ["realtimeRuntime", cpu.realtime_runtime],
      ["realtimePeriod", cpu.realtime_period],
      ["cpus", cpu.cpus],
      ["mems", cpu.mems],
    ]);
    if (mapped !== undefined) resources.cpu = mapped;
  }
  if (blkio !== undefined) {
    const nonEmpty = <T>(list: T[]) => (list.length === 0 ? undefined : list);
    const mapped = defined<NonNullable<OciResources["blockIO"]>>([
      ["weight", blkio.weight],
      ["leafWeight", blkio.leaf_weight],
      [
        "weightDevice",
        nonEmpty(
          blkio.weight_device.map((d) =>
            defined([
              ["major", d.major],
              ["minor", d.minor],
              ["weight", d.weight],
              ["leafWeight", d.leaf_weight],
            ]),
          ),
        ),
      ],
      ["throttleReadBpsDevice", nonEmpty(blkio.throttle_read_bps_device)],
      ["throttleWriteBpsDevice", nonEmpty(blkio.throttle_write_bps_device)],
      ["throttleReadIOPSDevice", nonEmpty(blkio.throttle_read_iops_device)],
      ["throttleWriteIOPSDevice", nonEmpty(blkio.throttle_write_iops_device)],
    ]);
    if (mapped !== undefined) resources.blockIO = mapped;
  }
  if (pids !== undefined) resources.pids = { limit: pids.max };
  for (const section of ["memory", "cpu", "blkio"] as const) {
    if (cgroups[section]?.attrs !== undefined) {
      warnings.push(
        `cgroups.${section}.attrs: free-form cgroup attributes have no OCI equivalent and are not applied`,
      );
    }
  }
  return resources;
}
