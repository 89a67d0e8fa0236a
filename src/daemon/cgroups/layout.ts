// Detects how cgroups are mounted on this host: pure v2 ("unified"), pure v1 ("legacy") or both ("hybrid").
import { readOptionalText, readText } from "./fsio.js";

export type CgroupLayoutKind = "unified" | "legacy" | "hybrid";

export interface ControllerMount {
  version: 1 | 2;
  /** Absolute mount point of the hierarchy that carries this controller. */
  mount: string;
}

export interface CgroupLayout {
  kind: CgroupLayoutKind;
  /** Controller name (cpu, memory, pids, freezer, io, blkio, ...) to the hierarchy it lives on. */
  controllers: ReadonlyMap<string, ControllerMount>;
  /** Mount point of the cgroup2 hierarchy, if any. */
  unified: string | undefined;
  /** Every hierarchy mount point: v1 controller and named hierarchies, then cgroup2. runc creates a
   *  container's cgroup on all of them, so Skiff's subtree exists (and is removed) on all of them. */
  hierarchies: readonly string[];
}

// v1 mount options that are flags rather than controller names.
const V1_MOUNT_FLAGS = new Set([
  "rw",
  "ro",
  "relatime",
  "noatime",
  "nosuid",
  "nodev",
  "noexec",
  "clone_children",
  "xattr",
  "noprefix",
  "cpuset_v2_mode",
]);

// mountinfo escapes space, tab, newline and backslash as \ooo octal sequences.
function unescapeMountPath(path: string): string {
  return path.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/**
 * Parses /proc/self/mountinfo text. `unifiedControllers` is the content of `<cgroup2 mount>/cgroup.controllers`
 * (the mount table does not say which controllers cgroup2 has).
 */
export function parseMountinfo(mountinfo: string, unifiedControllers = ""): CgroupLayout {
  const controllers = new Map<string, ControllerMount>();
  const hierarchies: string[] = [];
  let unified: string | undefined;
  let v1ControllerCount = 0;

  for (const line of mountinfo.split("\n")) {
    const separator = line.indexOf(" - ");
    if (separator < 0) continue;
    const before = line.slice(0, separator).split(" ");
    const [fsType, , superOptions = ""] = line.slice(separator + 3).split(" ");
    const mountPoint = before[4];
    if (mountPoint === undefined) continue;
    const mount = unescapeMountPath(mountPoint);

    if (fsType === "cgroup2") {
      if (unified !== undefined) continue; // the same hierarchy mounted again (bind mount)
      unified = mount;
    } else if (fsType === "cgroup") {
      const options = superOptions.split(",").filter((option) => !V1_MOUNT_FLAGS.has(option));
      const names = options.filter((option) => !option.includes("=")); // name=systemd is not a controller
      if (hierarchies.includes(mount) || names.some((name) => controllers.has(name))) continue;
      const named = options.some((option) => option.startsWith("name="));
      if (names.length === 0 && !named) continue;
      hierarchies.push(mount);
      for (const name of names) {
        controllers.set(name, { version: 1, mount });
        v1ControllerCount++;
      }
    }
  }

  if (unified !== undefined) {
    hierarchies.push(unified);
    for (const name of unifiedControllers.split(/\s+/).filter((n) => n !== "")) {
      if (!controllers.has(name)) controllers.set(name, { version: 2, mount: unified });
    }
  }
  if (unified === undefined && v1ControllerCount === 0) {
    throw new Error("no cgroup hierarchy is mounted (neither cgroup nor cgroup2 found in mountinfo)");
  }
  const kind: CgroupLayoutKind =
    v1ControllerCount === 0 ? "unified" : unified === undefined ? "legacy" : "hybrid";
  return { kind, controllers, unified, hierarchies };
}

/** Reads this host's cgroup layout (call once at startup). */
export async function detectLayout(mountinfoFile = "/proc/self/mountinfo"): Promise<CgroupLayout> {
  const mountinfo = await readText(mountinfoFile);
  const cgroup2 = parseMountinfo(mountinfo).unified;
  const unifiedControllers =
    cgroup2 === undefined ? "" : ((await readOptionalText(`${cgroup2}/cgroup.controllers`)) ?? "");
  return parseMountinfo(mountinfo, unifiedControllers);
}
