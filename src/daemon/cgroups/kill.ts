// Kills every process of a cgroup and waits until the cgroup is empty.
import { access } from "node:fs/promises";
import type { CgroupLayout } from "./layout.js";
import { allDirs, controllerDir, unifiedDir } from "./paths.js";
import { CgroupFileError, delay, errnoCode, parsePids, readOptionalText, writeControl } from "./fsio.js";

export interface KillOptions {
  signal?: AbortSignal;
  /** Give up (and throw) if the cgroup is not empty after this long. Default 5000 ms. */
  timeoutMs?: number;
}

// Re-check (and re-signal) schedule: a process can fork between reading cgroup.procs and the signal.
const POLL_MS = [0, 1, 5, 10, 25, 50, 100];

/**
 * SIGKILLs everything in the cgroup at absolute path `cgroupPath`. Uses cgroup.kill where the kernel has it
 * (cgroup2, also the unified hierarchy of a hybrid host, where runc puts containers too); always also signals
 * the pids listed on every hierarchy, since on a hybrid host a process may live only in the v1 cgroups.
 * A frozen v1 cgroup is thawed after the signals so the killed tasks can actually exit. A frozen cgroup2 group
 * needs no thaw for that (a fatal signal ends a v2-frozen task), but its cgroup.freeze stays 1 once it is
 * empty: it is cleared too, so a killed cgroup is left thawed on both versions.
 */
export async function killCgroup(
  layout: CgroupLayout,
  cgroupPath: string,
  options: KillOptions = {},
): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? 5000);
  const unified = unifiedDir(layout, cgroupPath);
  if (unified !== undefined && (await exists(`${unified}/cgroup.kill`))) {
    await writeControl(`${unified}/cgroup.kill`, "1");
  }
  for (let attempt = 0; ; attempt++) {
    const pids = await listPids(layout, cgroupPath);
    if (pids.length === 0) {
      await thawV2Freeze(layout, cgroupPath);
      return;
    }
    if (Date.now() >= deadline) {
      throw new Error(`cgroup ${cgroupPath} still has processes ${pids.join(", ")} after kill`);
    }
    for (const pid of pids) signalPid(pid);
    await thawV1Freezer(layout, cgroupPath);
    await delay(POLL_MS[Math.min(attempt, POLL_MS.length - 1)] ?? 100, options.signal);
  }
}

async function listPids(layout: CgroupLayout, cgroupPath: string): Promise<number[]> {
  const lists = await Promise.all(
    allDirs(layout, cgroupPath).map(async (dir) =>
      parsePids((await readOptionalText(`${dir}/cgroup.procs`)) ?? ""),
    ),
  );
  return [...new Set(lists.flat())];
}

function signalPid(pid: number): void {
  try {
    process.kill(pid, "SIGKILL");
  } catch (error) {
    if (errnoCode(error) !== "ESRCH") throw error; // already gone
  }
}

// Tasks in a frozen v1 cgroup cannot act on SIGKILL until thawed. (A v2-frozen task dies on a fatal signal.)
async function thawV1Freezer(layout: CgroupLayout, cgroupPath: string): Promise<void> {
  if (layout.controllers.get("freezer")?.version !== 1) return;
  const dir = controllerDir(layout, "freezer", cgroupPath);
  const state = dir === undefined ? undefined : await readOptionalText(`${dir}/freezer.state`);
  if (dir !== undefined && state !== undefined && state !== "THAWED") {
    await writeControl(`${dir}/freezer.state`, "THAWED");
  }
}

// Where the v2 freezer is the freezer (no v1 freezer controller), clears a freeze left on the emptied cgroup.
// A missing cgroup (already removed) has nothing to clear.
async function thawV2Freeze(layout: CgroupLayout, cgroupPath: string): Promise<void> {
  if (layout.controllers.get("freezer")?.version === 1) return;
  const unified = unifiedDir(layout, cgroupPath);
  if (unified === undefined) return;
  const requested = await readOptionalText(`${unified}/cgroup.freeze`);
  if (requested === undefined || requested === "0") return;
  await writeControl(`${unified}/cgroup.freeze`, "0").catch((error: unknown) => {
    if (!(error instanceof CgroupFileError && error.code === "ENOENT")) throw error; // removed meanwhile
  });
}

async function exists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch {
    return false;
  }
}
