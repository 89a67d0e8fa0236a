/**
 * Host facts buildOciSpec needs but must not look up itself: the hard rlimits every container
 * inherits, the architecture, named network namespaces and supplementary group ids. The
 * process-wide facts are read once at daemon start (readHostFacts); the per-container ones
 * (netns, groups) are one stat or one small file read at start time.
 */
import { readFile, statfs } from "node:fs/promises";
import { checkRealPathWithin, PathEscapeError, resolveWithin } from "../../common/paths.js";
import type { Manifest, RLimitResource } from "../../npk/manifest/index.js";
import type { NetworkChoice } from "./spec.js";
import { RLIM_INFINITY } from "./spec.js";
import { messageOf } from "../../common/errors.js";

export interface HostFacts {
  /**
   * Hard limits of the daemon, which runc and the container inherit. Without CAP_SYS_RESOURCE
   * (missing in some deployments) setrlimit above these fails, so buildOciSpec clamps to them.
   */
  rlimitHard: Partial<Record<RLimitResource, bigint>>;
  /** Node.js architecture name, for the seccomp filter. */
  arch: string;
  /** Directory of named network namespaces (`ip netns` uses /run/netns). */
  netnsDir: string;
}

/** /proc/<pid>/limits row names (fs/proc/base.c) to manifest rlimit names. */
const LIMIT_ROWS: Readonly<Record<string, RLimitResource>> = {
  "Max cpu time": "cpu",
  "Max file size": "fsize",
  "Max data size": "data",
  "Max stack size": "stack",
  "Max core file size": "core",
  "Max resident set": "rss",
  "Max processes": "nproc",
  "Max open files": "nofile",
  "Max locked memory": "memlock",
  "Max address space": "as",
  "Max file locks": "locks",
  "Max pending signals": "sigpending",
  "Max msgqueue size": "msgqueue",
  "Max nice priority": "nice",
  "Max realtime priority": "rtprio",
  "Max realtime timeout": "rttime",
};

/**
 * Hard limits from /proc/<pid>/limits text. The kernel writes the name left-aligned in 25
 * columns, then soft, hard and units; "unlimited" becomes RLIM_INFINITY. Unknown rows are ignored.
 */
export function parseProcLimits(text: string): Partial<Record<RLimitResource, bigint>> {
  const hard: Partial<Record<RLimitResource, bigint>> = {};
  for (const line of text.split("\n")) {
    const resource = LIMIT_ROWS[line.slice(0, 25).trim()];
    if (resource === undefined) continue;
    const value = line.slice(25).trim().split(/\s+/)[1];
    if (value === "unlimited") hard[resource] = RLIM_INFINITY;
    else if (value !== undefined && /^\d+$/.test(value)) hard[resource] = BigInt(value);
    else throw new Error(`cannot read the hard limit in /proc limits line "${line}"`);
  }
  return hard;
}

/** Reads the process-wide facts; call once at daemon start. */
export async function readHostFacts(
  options: { limitsFile?: string; netnsDir?: string } = {},
): Promise<HostFacts> {
  const limits = await readFile(options.limitsFile ?? "/proc/self/limits", "utf8");
  return {
    rlimitHard: parseProcLimits(limits),
    arch: process.arch,
    netnsDir: options.netnsDir ?? "/run/netns",
  };
}

/** statfs(2) f_type of nsfs, the file system of namespace files such as /run/netns/<name>. */
const NSFS_MAGIC = 0x6e736673;

/**
 * The network namespace a container joins. A named namespace must exist and be a namespace
 * file: a container that asked for one never silently gets another network.
 */
export async function resolveNetwork(manifest: Manifest, netnsDir: string): Promise<NetworkChoice> {
  const network = manifest.network;
  if (network === undefined) return { kind: "new" };
  if (network === "host") return { kind: "host" };
  const name = network.namespace;
  let path: string;
  try {
    path = resolveWithin(netnsDir, name);
  } catch (error) {
    if (!(error instanceof PathEscapeError)) throw error;
    throw new Error(`network.namespace: "${name}" is not a namespace name (${error.reason})`);
  }
  let type: number;
  try {
    type = (await statfs(path)).type;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") {
      throw new Error(`network.namespace: ${path} does not exist (create it with "ip netns add ${name}")`);
    }
    throw new Error(`network.namespace: cannot stat ${path}: ${messageOf(error)}`);
  }
  if (type !== NSFS_MAGIC) throw new Error(`network.namespace: ${path} is not a namespace file`);
  return { kind: "path", path };
}

/** Group names to gids from /etc/group text (`name:password:gid:members`). First entry wins. */
export function parseGroupFile(text: string): Map<string, number> {
  const groups = new Map<string, number>();
  for (const line of text.split("\n")) {
    const [name, , gid] = line.split(":");
    if (name === undefined || name === "" || name.startsWith("#") || gid === undefined) continue;
    if (/^\d+$/.test(gid) && !groups.has(name)) groups.set(name, Number(gid));
  }
  return groups;
}

/**
 * Gids for the manifest's supplementary groups: names from the image's /etc/group, else a
 * numeric name is taken as the gid. Names resolved neither way are left out; buildOciSpec
 * skips them with a warning. The image's /etc/group is read only if it resolves inside the image
 * (a symlink out of the image would read a host file).
 */
export async function resolveGroupIds(
  manifest: Manifest,
  rootfsPath: string,
): Promise<Record<string, number>> {
  const wanted = manifest.suppl_groups ?? [];
  if (wanted.length === 0) return {};
  const groups = await readImageGroups(rootfsPath);
  const ids: Record<string, number> = {};
  for (const name of wanted) {
    const gid = groups.get(name) ?? (/^\d+$/.test(name) ? Number(name) : undefined);
    if (gid !== undefined && gid <= 0xffff_fffe) ids[name] = gid;
  }
  return ids;
}

async function readImageGroups(rootfsPath: string): Promise<Map<string, number>> {
  try {
    const file = await checkRealPathWithin(rootfsPath, resolveWithin(rootfsPath, "etc", "group"));
    return parseGroupFile(await readFile(file, "utf8"));
  } catch (error) {
    if (error instanceof PathEscapeError) return new Map();
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return new Map();
    throw error;
  }
}
