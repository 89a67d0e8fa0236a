import { imagePathComponents } from "../../common/paths.js";
import { nameProblem } from "../../protocol/container.js";
import { isDuration, parseDuration } from "./duration.js";
import { IssueList, joinPath } from "./errors.js";
import { isValidVersionRequirement } from "./version-req.js";
import type { Manifest, Mount } from "./types.js";

const MAX_INIT_LENGTH = 4096;
const MAX_ENV_VARS = 64;
const MAX_ENV_NAME_LENGTH = 64;
const MAX_ENV_VALUE_LENGTH = 1024;
const MAX_SUPPL_GROUPS = 64;
const MAX_SUPPL_GROUP_LENGTH = 64;
const MAX_NETNS_LENGTH = 256;
const MAX_SECCOMP_ARG_INDEX = 5;
const MAX_SECCOMP_ARG_VALUES = 50;
const MAX_SELINUX_CONTEXT_LENGTH = 65_535;

/** Set by the runtime in every container; a manifest may not set them. */
export const RESERVED_ENV_VARIABLES: readonly string[] = [
  "NORTHSTAR_NAME",
  "NORTHSTAR_VERSION",
  "NORTHSTAR_CONTAINER",
  "NORTHSTAR_CONSOLE",
  "SKIFF_NAME",
  "SKIFF_VERSION",
  "SKIFF_CONTAINER",
  "SKIFF_CONSOLE",
];

/** Fields a resource container (one without `init`) must not set. */
const NOT_FOR_RESOURCES = [
  "args",
  "env",
  "autostart",
  "cgroups",
  "io",
  "seccomp",
  "capabilities",
  "suppl_groups",
  // Skiff extensions that only make sense for something that runs
  "restart",
  "stop_timeout",
  "group",
  "power",
] as const;

/**
 * Container (and resource, group, socket) names: the one name rule of protocol/container.ts,
 * 1..1024 of `0-9 A-Z a-z . _ -` and not `.` or `..` (every such name becomes a file name).
 */
export function isValidContainerName(name: string): boolean {
  return nameProblem(name) === undefined;
}

/** Adds an issue at `path` when `name` breaks the name rule. */
function checkName(issues: IssueList, path: string, what: string, name: string): void {
  const problem = nameProblem(name);
  if (problem !== undefined)
    issues.add(path, `invalid ${what} "${name}": ${problem.replace(/^container name /, "")}`);
}

/**
 * Checks every Northstar rule, plus fixes for Northstar's known gaps (round_robin priorities and
 * socket uid/gid were never actually checked there) and the Skiff extension rules.
 * Throws ManifestError listing every problem.
 */
export function validateManifest(m: Manifest): void {
  const issues = new IssueList();
  checkNoNul(issues, m, "");
  checkName(issues, "name", "container name", m.name);
  if (m.init !== undefined && (m.init.length < 1 || m.init.length > MAX_INIT_LENGTH)) {
    issues.add("init", `length must be between 1 and ${MAX_INIT_LENGTH}`);
  }
  if (m.uid < 1) issues.add("uid", "uid must be greater than 0");
  if (m.gid < 1) issues.add("gid", "gid must be greater than 0");
  checkEnv(issues, m.env ?? {});
  checkSupplGroups(issues, m.suppl_groups ?? []);
  checkMounts(issues, m.mounts ?? {});
  checkSched(issues, m);
  checkSockets(issues, m);
  checkSeccomp(issues, m);
  checkSelinux(issues, m);
  checkNetwork(issues, m);
  checkLimits(issues, m);
  checkExtensions(issues, m);
  if (m.init === undefined) {
    for (const field of NOT_FOR_RESOURCES) {
      if (m[field] !== undefined) issues.add(field, "a resource container (no init) must not set this field");
    }
  }
  issues.throwIfAny();
}

/** Northstar stores every string as a NUL-free C string. `custom` is free-form JSON and exempt. */
function checkNoNul(issues: IssueList, value: unknown, path: string): void {
  if (typeof value === "string") {
    if (value.includes("\0")) issues.add(path, "must not contain a NUL byte");
  } else if (Array.isArray(value)) {
    value.forEach((item, i) => checkNoNul(issues, item, joinPath(path, i)));
  } else if (value !== null && typeof value === "object") {
    for (const [key, item] of Object.entries(value)) {
      if (path === "" && key === "custom") continue;
      if (key.includes("\0")) issues.add(joinPath(path, key), "key must not contain a NUL byte");
      checkNoNul(issues, item, joinPath(path, key));
    }
  }
}

function checkEnv(issues: IssueList, env: Record<string, string>): void {
  const names = Object.keys(env);
  if (names.length > MAX_ENV_VARS) issues.add("env", `at most ${MAX_ENV_VARS} variables`);
  for (const name of names) {
    const path = joinPath("env", name);
    if (name.length === 0 || name.includes("="))
      issues.add(path, "variable name must be non-empty and contain no '='");
    if (name.length > MAX_ENV_NAME_LENGTH)
      issues.add(path, `variable name longer than ${MAX_ENV_NAME_LENGTH}`);
    if (env[name]!.length > MAX_ENV_VALUE_LENGTH)
      issues.add(path, `value longer than ${MAX_ENV_VALUE_LENGTH}`);
    if (RESERVED_ENV_VARIABLES.includes(name)) issues.add(path, "reserved variable name, set by the runtime");
  }
}

function checkSupplGroups(issues: IssueList, groups: string[]): void {
  if (groups.length > MAX_SUPPL_GROUPS) issues.add("suppl_groups", `at most ${MAX_SUPPL_GROUPS} groups`);
  groups.forEach((group, i) => {
    if (group.length > MAX_SUPPL_GROUP_LENGTH) {
      issues.add(joinPath("suppl_groups", i), `group name longer than ${MAX_SUPPL_GROUP_LENGTH}`);
    }
  });
}

/** Splits an absolute path into its components, or returns undefined if it is not a clean absolute path. */
function components(path: string): string[] | undefined {
  if (!path.startsWith("/")) return undefined;
  const parts = path.split("/").filter((part) => part !== "");
  return parts.some((part) => part === "." || part === "..") ? undefined : parts;
}

function checkMounts(issues: IssueList, mounts: Record<string, Mount>): void {
  const seen = new Map<string, string>();
  const binds: [string, string[]][] = [];
  for (const [target, mount] of Object.entries(mounts)) {
    const path = joinPath("mounts", target);
    const parts = components(target);
    if (parts === undefined) {
      issues.add(path, "mount point must be an absolute path without . or .. components");
      continue;
    }
    if (parts.length === 0) issues.add(path, "mount point must not be /");
    const normalized = "/" + parts.join("/");
    const previous = seen.get(normalized);
    if (previous !== undefined) issues.add(path, `duplicate mount point (same as "${previous}")`);
    seen.set(normalized, target);
    if (mount.type === "bind") {
      binds.push([target, parts]);
      if (!mount.host.startsWith("/")) issues.add(joinPath(path, "host"), "host path must be absolute");
    }
    if (mount.type === "resource") {
      if (mount.options?.split(",").includes("rec"))
        issues.add(joinPath(path, "options"), "resource mounts must not be recursive (rec)");
      // The directory is joined onto the resource's mounted image on the host: it must stay inside.
      if (imagePathComponents(mount.dir) === undefined)
        issues.add(
          joinPath(path, "dir"),
          "resource directory must be an absolute path without . or .. components",
        );
      checkName(issues, joinPath(path, "name"), "container name", mount.name);
      if (!isValidVersionRequirement(mount.version)) {
        issues.add(joinPath(path, "version"), `invalid version requirement "${mount.version}"`);
      }
    }
  }
  // As in Northstar, a bind mount may not be nested inside another bind mount.
  for (const [target, parts] of binds) {
    for (const [other, otherParts] of binds) {
      const nested =
        otherParts.length > 0 &&
        otherParts.length < parts.length &&
        otherParts.every((p, i) => parts[i] === p);
      if (nested) issues.add(joinPath("mounts", target), `bind mount overlaps bind mount "${other}"`);
    }
  }
}

function checkSched(issues: IssueList, m: Manifest): void {
  const policy = m.sched?.policy;
  if (policy === undefined || typeof policy === "string") return;
  const [name, params] = Object.entries(policy)[0] as [string, { nice?: number; priority?: number }];
  const path = joinPath("sched.policy", name);
  if (params.nice !== undefined && (params.nice < -20 || params.nice > 19)) {
    issues.add(joinPath(path, "nice"), "nice must be between -20 and 19");
  }
  if (params.priority !== undefined && (params.priority < 1 || params.priority > 99)) {
    issues.add(joinPath(path, "priority"), `${name} priority must be between 1 and 99`);
  }
}

function checkSockets(issues: IssueList, m: Manifest): void {
  for (const [name, socket] of Object.entries(m.sockets ?? {})) {
    const path = joinPath("sockets", name);
    // The socket file is `<socket dir>/<name>:<version>:<socket name>`.
    checkName(issues, path, "socket name", name);
    if (socket.uid !== undefined && socket.uid < 1)
      issues.add(joinPath(path, "uid"), "uid must be greater than 0");
    if (socket.gid !== undefined && socket.gid < 1)
      issues.add(joinPath(path, "gid"), "gid must be greater than 0");
    if (socket.mode > 0o7777) issues.add(joinPath(path, "mode"), "mode must be at most 0o7777");
  }
}

function checkSeccomp(issues: IssueList, m: Manifest): void {
  for (const [name, rule] of Object.entries(m.seccomp?.allow ?? {})) {
    const path = joinPath("seccomp.allow", name);
    if (name.length === 0) issues.add(path, "syscall name is empty");
    if (rule === "any") continue;
    const args = rule.args;
    if (args.index > MAX_SECCOMP_ARG_INDEX) {
      issues.add(joinPath(path, "args.index"), `argument index must be ${MAX_SECCOMP_ARG_INDEX} or less`);
    }
    if (args.values === undefined && args.mask === undefined) {
      issues.add(joinPath(path, "args"), "either values or mask must be given");
    }
    if (args.values !== undefined && args.values.length > MAX_SECCOMP_ARG_VALUES) {
      issues.add(joinPath(path, "args.values"), `at most ${MAX_SECCOMP_ARG_VALUES} values`);
    }
  }
}

function checkSelinux(issues: IssueList, m: Manifest): void {
  for (const key of ["mount_context", "exec"] as const) {
    const context = m.selinux?.[key];
    if (context === undefined || context === null) continue;
    const path = joinPath("selinux", key);
    if (context.length === 0) issues.add(path, "SELinux context is empty");
    else if (context.length > MAX_SELINUX_CONTEXT_LENGTH) issues.add(path, "SELinux context too long");
    else if (!/^[0-9A-Za-z:_]+$/.test(context))
      issues.add(path, "SELinux context may only contain 0-9 A-Z a-z : _");
  }
}

function checkNetwork(issues: IssueList, m: Manifest): void {
  if (m.network === undefined || m.network === "host") return;
  const name = m.network.namespace;
  if (name.length > MAX_NETNS_LENGTH) issues.add("network.namespace", `longer than ${MAX_NETNS_LENGTH}`);
  // The name becomes a file name under /run/netns.
  if (name.length === 0 || name.includes("/") || name === "." || name === "..") {
    issues.add("network.namespace", "must be a plain file name (no '/', not . or ..)");
  }
}

function checkLimits(issues: IssueList, m: Manifest): void {
  for (const [resource, limit] of Object.entries(m.rlimits ?? {})) {
    if (limit.soft !== null && limit.hard !== null && limit.soft > limit.hard) {
      issues.add(joinPath("rlimits", resource), "soft limit exceeds hard limit");
    }
  }
  const swappiness = m.cgroups?.memory?.swappiness;
  if (swappiness !== undefined && swappiness > 100)
    issues.add("cgroups.memory.swappiness", "must be between 0 and 100");
}

function checkExtensions(issues: IssueList, m: Manifest): void {
  const checkDuration = (text: string | undefined, path: string) => {
    if (text !== undefined && !isDuration(text))
      issues.add(path, `invalid duration "${text}" (e.g. 500ms, 5s, 1m30s)`);
  };
  checkDuration(m.stop_timeout, "stop_timeout");
  const backoff = m.restart?.backoff;
  if (backoff !== undefined) {
    checkDuration(backoff.initial, "restart.backoff.initial");
    checkDuration(backoff.max, "restart.backoff.max");
    if (
      isDuration(backoff.initial) &&
      isDuration(backoff.max) &&
      parseDuration(backoff.initial) > parseDuration(backoff.max)
    ) {
      issues.add("restart.backoff", "initial must not exceed max");
    }
  }
  if (m.group !== undefined) checkName(issues, "group", "group name", m.group);
  checkDuration(m.power?.idle_suspend_after, "power.idle_suspend_after");
  const names = new Set<string>();
  (m.power?.proxies ?? []).forEach((proxy, i) => {
    const path = joinPath("power.proxies", i);
    if (proxy.name.length === 0) issues.add(joinPath(path, "name"), "must not be empty");
    if (names.has(proxy.name)) issues.add(joinPath(path, "name"), `duplicate proxy name "${proxy.name}"`);
    names.add(proxy.name);
    if (proxy.listen.length === 0) issues.add(joinPath(path, "listen"), "must not be empty");
    if (proxy.target.length === 0) issues.add(joinPath(path, "target"), "must not be empty");
  });
}
