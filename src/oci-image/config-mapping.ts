// Image config → the NPK manifest fields it determines: Entrypoint + Cmd → init + args,
// Env → env, User → uid/gid (names from the image's /etc/passwd and /etc/group), and name and
// version from flags, annotations or the tag. Pure: the caller reads the files and merges.
import semver from "semver";
import { RESERVED_ENV_VARIABLES, isValidContainerName } from "../npk/manifest/validate.js";
import type { ContainerConfig } from "./documents.js";
import { OciImageError } from "./errors.js";

const MAX_ID = 65_535;
export const TITLE_ANNOTATION = "org.opencontainers.image.title";
export const VERSION_ANNOTATION = "org.opencontainers.image.version";

export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
}

export interface GroupEntry {
  name: string;
  gid: number;
}

const ID = /^\d{1,10}$/;

/** `name:x:uid:gid:…` lines; comments and malformed lines are skipped. */
export function parsePasswd(text: string): PasswdEntry[] {
  return text.split("\n").flatMap((line) => {
    const [name, , uid, gid] = line.split(":");
    if (
      name === undefined ||
      name === "" ||
      name.startsWith("#") ||
      !ID.test(uid ?? "") ||
      !ID.test(gid ?? "")
    )
      return [];
    return [{ name, uid: Number(uid), gid: Number(gid) }];
  });
}

/** `name:x:gid:members` lines; comments and malformed lines are skipped. */
export function parseGroup(text: string): GroupEntry[] {
  return text.split("\n").flatMap((line) => {
    const [name, , gid] = line.split(":");
    if (name === undefined || name === "" || name.startsWith("#") || !ID.test(gid ?? "")) return [];
    return [{ name, gid: Number(gid) }];
  });
}

const ROOT_HINT =
  "Skiff runs containers as a non-root user (uid and gid ≥ 1): build the image with a USER, or pass --user UID:GID (or uid and gid in --manifest)";

/**
 * Resolves a config User (`user`, `uid`, `user:group`, `uid:gid`, mixed) against the image's
 * users and groups. Root (an empty User included: that is what it means) is refused.
 */
export function resolveUser(
  spec: string,
  passwd: PasswdEntry[],
  groups: GroupEntry[],
): { uid: number; gid: number } {
  const [userPart = "", groupPart] = spec.split(":", 2) as [string?, string?];
  if (userPart === "" || userPart === "root" || userPart === "0") {
    throw new OciImageError("config", `the image runs as root (User "${spec}"). ${ROOT_HINT}`);
  }
  let uid: number;
  let primaryGid: number | undefined;
  if (ID.test(userPart)) {
    uid = Number(userPart);
    primaryGid = passwd.find((p) => p.uid === uid)?.gid;
  } else {
    const entry = passwd.find((p) => p.name === userPart);
    if (entry === undefined)
      throw new OciImageError("config", `User "${spec}": no user "${userPart}" in the image's /etc/passwd`);
    uid = entry.uid;
    primaryGid = entry.gid;
  }
  let gid: number;
  if (groupPart === undefined || groupPart === "") {
    if (primaryGid === undefined) {
      throw new OciImageError(
        "config",
        `User "${spec}": uid ${uid} has no /etc/passwd entry, so its group is unknown: use UID:GID`,
      );
    }
    gid = primaryGid;
  } else if (ID.test(groupPart)) {
    gid = Number(groupPart);
  } else {
    const entry = groups.find((g) => g.name === groupPart);
    if (entry === undefined)
      throw new OciImageError("config", `User "${spec}": no group "${groupPart}" in the image's /etc/group`);
    gid = entry.gid;
  }
  if (uid === 0 || gid === 0) {
    throw new OciImageError(
      "config",
      `the image runs as ${uid === 0 ? "uid" : "gid"} 0 (User "${spec}"). ${ROOT_HINT}`,
    );
  }
  if (uid > MAX_ID || gid > MAX_ID)
    throw new OciImageError("config", `User "${spec}": uid and gid must be at most ${MAX_ID}`);
  return { uid, gid };
}

export interface GeneratedFields {
  /** Undefined when the image has neither Entrypoint nor Cmd. */
  init?: string;
  args: string[];
  env: Record<string, string>;
}

/**
 * Entrypoint + Cmd and Env as manifest fields; `warn` hears what is dropped (reserved variables,
 * WorkingDir, Volumes). A relative init is kept: skiff-init runs it with execvp and the env's PATH.
 */
export function mapProcess(config: ContainerConfig, warn: (message: string) => void): GeneratedFields {
  const argv = [...(config.Entrypoint ?? []), ...(config.Cmd ?? [])];
  const [init, ...args] = argv;
  if (init === "") throw new OciImageError("config", "the image's Entrypoint starts with an empty string");
  const env: Record<string, string> = {};
  for (const entry of config.Env ?? []) {
    const eq = entry.indexOf("=");
    if (eq <= 0) throw new OciImageError("config", `Env entry "${entry.slice(0, 80)}" is not NAME=VALUE`);
    const name = entry.slice(0, eq);
    if (RESERVED_ENV_VARIABLES.includes(name)) {
      warn(`Env ${name} dropped: the runtime sets it`);
      continue;
    }
    env[name] = entry.slice(eq + 1);
  }
  if (config.WorkingDir !== undefined && config.WorkingDir !== "" && config.WorkingDir !== "/") {
    warn(
      `WorkingDir ${config.WorkingDir} ignored: Skiff starts every container in / (use an absolute init path)`,
    );
  }
  for (const volume of config.Volumes ?? []) {
    warn(`Volume ${volume} not mounted: the root is read-only; add a persist or tmpfs mount in --manifest`);
  }
  return { ...(init === undefined ? {} : { init }), args, env };
}

/** A container name from the flag, the title annotation or the repository's last component. */
export function chooseName(
  flag: string | undefined,
  annotations: Record<string, string>,
  repository: string | undefined,
): string {
  if (flag !== undefined) return flag;
  const candidate = annotations[TITLE_ANNOTATION] ?? repository?.split("/").pop();
  if (candidate === undefined || !isValidContainerName(candidate)) {
    throw new OciImageError(
      "config",
      candidate === undefined
        ? "the image has no name (no title annotation, no repository): pass --name"
        : `"${candidate}" is not a valid container name: pass --name`,
    );
  }
  return candidate;
}

/** `1`, `1.2`, `v1.2.3` → `1.0.0`, `1.2.0`, `1.2.3`; anything else is not a version. */
export function versionFromText(text: string): string | undefined {
  const bare = text.startsWith("v") ? text.slice(1) : text;
  const padded = /^\d+$/.test(bare) ? `${bare}.0.0` : /^\d+\.\d+$/.test(bare) ? `${bare}.0` : bare;
  return semver.valid(padded) ?? undefined;
}

/** The version from the flag, the version annotation or the tag. */
export function chooseVersion(
  flag: string | undefined,
  annotations: Record<string, string>,
  tag: string | undefined,
): string {
  if (flag !== undefined) return flag;
  for (const candidate of [annotations[VERSION_ANNOTATION], tag]) {
    if (candidate === undefined) continue;
    const version = versionFromText(candidate);
    if (version !== undefined) return version;
  }
  const seen = [annotations[VERSION_ANNOTATION], tag].filter((c) => c !== undefined).map((c) => `"${c}"`);
  throw new OciImageError(
    "config",
    `${seen.length === 0 ? "the image has no version annotation or tag" : `${seen.join(" and ")} is not a version`}: pass --version`,
  );
}
