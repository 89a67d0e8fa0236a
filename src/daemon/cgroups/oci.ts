// CgroupLimits as the OCI runtime spec's linux.resources, for the config.json handed to runc. runc then does
// its own v1/v2 translation, which matches limitsToFiles (both follow the same conversions).
import { weightToShares, type CgroupLimits, type DeviceThrottle } from "./limits.js";

export interface OciLinuxResources {
  memory?: { limit?: number; reservation?: number; swap?: number; swappiness?: number };
  cpu?: { shares?: number; quota?: number; period?: number; cpus?: string; mems?: string };
  blockIO?: {
    weight?: number;
    weightDevice?: { major: number; minor: number; weight: number }[];
    throttleReadBpsDevice?: DeviceThrottle[];
    throttleWriteBpsDevice?: DeviceThrottle[];
    throttleReadIOPSDevice?: DeviceThrottle[];
    throttleWriteIOPSDevice?: DeviceThrottle[];
  };
  pids?: { limit: number };
}

/** Pure. The OCI spec only knows cpu shares, so a cpu weight (v2 units) is passed as the equivalent shares. */
export function limitsToOciResources(limits: CgroupLimits): OciLinuxResources {
  const resources: OciLinuxResources = {};
  const { memory, cpu, io, pids } = limits;
  if (memory !== undefined) resources.memory = { ...memory };
  if (cpu !== undefined) {
    const { weight, ...rest } = cpu;
    resources.cpu = weight === undefined ? { ...rest } : { ...rest, shares: weightToShares(weight) };
  }
  if (io !== undefined) {
    resources.blockIO = dropUndefined({
      weight: io.weight,
      weightDevice: io.weightDevice,
      throttleReadBpsDevice: io.readBps,
      throttleWriteBpsDevice: io.writeBps,
      throttleReadIOPSDevice: io.readIops,
      throttleWriteIOPSDevice: io.writeIops,
    });
  }
  if (pids?.max !== undefined) resources.pids = { limit: pids.max };
  return resources;
}

function dropUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
