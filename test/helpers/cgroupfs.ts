// Layout-aware reads of cgroup control files for integration tests: one place that knows which file holds
// a memory limit, the freezer state or the CPU usage on a v1 (hybrid/legacy) host and on a pure v2 host,
// so each test checks the file of the layout it runs on (the development host is hybrid, the VM lane's
// guest is pure v2; docs/testing.md). These read the kernel's files directly and deliberately do not go
// through src/daemon/cgroups (stats.ts, limits.ts), which are what the tests check.
import { readFile } from "node:fs/promises";
import { detectLayout, type CgroupLayout } from "../../src/daemon/cgroups/layout.js";

const absolute = (cgroupPath: string): string => (cgroupPath.startsWith("/") ? cgroupPath : `/${cgroupPath}`);

let detected: Promise<CgroupLayout> | undefined;

/** This host's layout, detected once per test process. */
export function hostLayout(): Promise<CgroupLayout> {
  detected ??= detectLayout();
  return detected;
}

/** The cgroup version carrying `controller` on this host; throws when the host lacks it. */
export async function controllerVersion(controller: string): Promise<1 | 2> {
  const mount = (await hostLayout()).controllers.get(controller);
  if (mount === undefined) throw new Error(`this host has no ${controller} controller`);
  return mount.version;
}

/** Absolute directory of the cgroup at `cgroupPath` (absolute from the hierarchy root, e.g. "/skiff-x/app")
 *  in the hierarchy that carries `controller`. */
export async function cgroupDir(controller: string, cgroupPath: string): Promise<string> {
  const mount = (await hostLayout()).controllers.get(controller);
  if (mount === undefined) throw new Error(`this host has no ${controller} controller`);
  return `${mount.mount}${absolute(cgroupPath)}`;
}

/** The trimmed text of `file` of the cgroup at `cgroupPath` in `controller`'s hierarchy. */
export async function readControl(controller: string, cgroupPath: string, file: string): Promise<string> {
  return (await readFile(`${await cgroupDir(controller, cgroupPath)}/${file}`, "utf8")).trim();
}

// v1 reports "no limit" as the page-rounded maximum (9223372036854771712 on x86-64).
const V1_UNLIMITED = 2n ** 62n;

function limitValue(text: string): number {
  if (text === "max") return -1;
  const value = BigInt(text);
  return value >= V1_UNLIMITED ? -1 : Number(value);
}

/** The hard memory limit in bytes (-1 = none): memory.limit_in_bytes on v1, memory.max on v2. */
export async function readMemoryLimit(cgroupPath: string): Promise<number> {
  const file = (await controllerVersion("memory")) === 1 ? "memory.limit_in_bytes" : "memory.max";
  return limitValue(await readControl("memory", cgroupPath, file));
}

/** The soft limit / protection in bytes (-1 = none): memory.soft_limit_in_bytes on v1, memory.low on v2. */
export async function readMemoryReservation(cgroupPath: string): Promise<number> {
  const file = (await controllerVersion("memory")) === 1 ? "memory.soft_limit_in_bytes" : "memory.low";
  return limitValue(await readControl("memory", cgroupPath, file));
}

/** Memory plus swap in bytes, in v1's (and CgroupLimits') terms (-1 = none): memory.memsw.limit_in_bytes
 *  on v1; memory.max + memory.swap.max on v2, where swap is limited on its own. */
export async function readMemorySwapLimit(cgroupPath: string): Promise<number> {
  if ((await controllerVersion("memory")) === 1)
    return limitValue(await readControl("memory", cgroupPath, "memory.memsw.limit_in_bytes"));
  const memory = limitValue(await readControl("memory", cgroupPath, "memory.max"));
  const swap = limitValue(await readControl("memory", cgroupPath, "memory.swap.max"));
  return memory === -1 || swap === -1 ? -1 : memory + swap;
}

export type CgroupFreezerState = "thawed" | "freezing" | "frozen";

/**
 * The freezer state as the kernel reports it: freezer.state (THAWED, FREEZING, FROZEN) on v1; on v2 the
 * `frozen` key of cgroup.events (1 once every task is frozen) together with cgroup.freeze (the request),
 * so a freeze asked for but not complete reads "freezing".
 */
export async function readFreezerState(cgroupPath: string): Promise<CgroupFreezerState> {
  if ((await hostLayout()).controllers.get("freezer")?.version === 1) {
    const state = await readControl("freezer", cgroupPath, "freezer.state");
    switch (state) {
      case "THAWED":
        return "thawed";
      case "FREEZING":
        return "freezing";
      case "FROZEN":
        return "frozen";
      default:
        throw new Error(`unexpected freezer.state "${state}"`);
    }
  }
  const unified = (await hostLayout()).unified;
  if (unified === undefined) throw new Error("this host has neither a v1 freezer nor cgroup2");
  const dir = `${unified}${absolute(cgroupPath)}`;
  const events = await readFile(`${dir}/cgroup.events`, "utf8");
  const frozen = /^frozen (\d)$/m.exec(events)?.[1];
  if (frozen === undefined) throw new Error(`${dir}/cgroup.events has no frozen key (kernel < 5.2)`);
  if (frozen === "1") return "frozen";
  return (await readFile(`${dir}/cgroup.freeze`, "utf8")).trim() === "1" ? "freezing" : "thawed";
}

/** CPU time used by the cgroup in microseconds: cpuacct.usage (ns) on v1, usage_usec of cpu.stat on v2
 *  (present on every v2 cgroup, with or without the cpu controller enabled). */
export async function readCpuUsageUs(cgroupPath: string): Promise<number> {
  if ((await hostLayout()).controllers.get("cpuacct")?.version === 1)
    return Math.floor(Number(await readControl("cpuacct", cgroupPath, "cpuacct.usage")) / 1000);
  const unified = (await hostLayout()).unified;
  if (unified === undefined) throw new Error("this host has neither cpuacct nor cgroup2");
  const file = `${unified}${absolute(cgroupPath)}/cpu.stat`;
  const usage = /^usage_usec (\d+)$/m.exec(await readFile(file, "utf8"))?.[1];
  if (usage === undefined) throw new Error(`${file} has no usage_usec`);
  return Number(usage);
}
