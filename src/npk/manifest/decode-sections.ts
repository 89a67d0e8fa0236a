import { joinPath } from "./errors.js";
import { type Raw, type Reader, readIntegers, setIfDefined } from "./reader.js";
import {
  type Console,
  CONSOLE_PERMISSIONS,
  type ConsolePermission,
  type Io,
  OUTPUTS,
  RLIMIT_RESOURCES,
  type RLimitResource,
  type RLimitValue,
  type Sched,
  type SchedPolicy,
  type Seccomp,
  type Selinux,
  type Socket,
  SOCKET_TYPES,
  type SyscallRule,
} from "./types.js";

const U32_MAX = 4_294_967_295;

export function decodeConsole(read: Reader, value: Raw): Console | undefined {
  const raw = read.object(value, "console", ["permissions"], ["permissions"]);
  if (raw?.permissions === undefined) return undefined;
  const path = "console.permissions";
  if (raw.permissions === "full") return { permissions: "full" };
  const items = read.array(raw.permissions, path);
  if (items === undefined) return undefined;
  const permissions: ConsolePermission[] = [];
  items.forEach((item, i) => {
    const permission = read.oneOf(item, joinPath(path, i), CONSOLE_PERMISSIONS);
    if (permission !== undefined && !permissions.includes(permission)) permissions.push(permission);
  });
  // Northstar keeps permissions in a set and writes the complete set as "full".
  return { permissions: permissions.length === CONSOLE_PERMISSIONS.length ? "full" : permissions };
}

export function decodeSched(read: Reader, value: Raw): Sched | undefined {
  // Northstar's Sched and its policy variants have no deny_unknown_fields: unknown keys are ignored.
  const raw = read.tolerantObject(value, "sched", ["policy"]);
  if (raw?.policy === undefined) return undefined;
  const path = "sched.policy";
  const v = read.variant(raw.policy, path);
  if (v === undefined) return undefined;
  const inner = (field: "nice" | "priority", min: number, max: number) => {
    const body = read.tolerantObject(v.content ?? null, joinPath(path, v.tag), [field]);
    if (body?.[field] === undefined) return undefined;
    return read.integer(body[field], joinPath(joinPath(path, v.tag), field), min, max);
  };
  let policy: SchedPolicy | undefined;
  switch (v.tag) {
    case "other":
    case "batch": {
      const nice = inner("nice", -128, 127);
      if (nice !== undefined) policy = v.tag === "other" ? { other: { nice } } : { batch: { nice } };
      break;
    }
    case "fifo":
    case "round_robin": {
      const priority = inner("priority", 0, U32_MAX);
      if (priority !== undefined)
        policy = v.tag === "fifo" ? { fifo: { priority } } : { round_robin: { priority } };
      break;
    }
    case "idle":
    case "deadline":
      if (v.content === undefined) policy = v.tag;
      else read.issues.add(path, `policy ${v.tag} takes no parameters`);
      break;
    default:
      read.issues.add(
        path,
        `unknown policy "${v.tag}" (expected other, fifo, round_robin, batch, idle, deadline)`,
      );
  }
  return policy === undefined ? undefined : { policy };
}

export function decodeSeccomp(read: Reader, value: Raw): Seccomp | undefined {
  const raw = read.object(value, "seccomp", ["profile", "allow"]);
  if (raw === undefined) return undefined;
  const out: Seccomp = {};
  if (raw.profile != null)
    setIfDefined(out, "profile", read.oneOf(raw.profile, "seccomp.profile", ["default"]));
  if (raw.allow == null) return out;
  const allow = read.map(raw.allow, "seccomp.allow");
  if (allow === undefined) return out;
  out.allow = {};
  for (const [name, item] of Object.entries(allow)) {
    setIfDefined(out.allow, name, decodeSyscallRule(read, item, joinPath("seccomp.allow", name)));
  }
  return out;
}

function decodeSyscallRule(read: Reader, value: Raw, path: string): SyscallRule | undefined {
  const v = read.variant(value, path);
  if (v === undefined) return undefined;
  if (v.tag === "any" && v.content === undefined) return "any";
  if (v.tag !== "args" || v.content === undefined) {
    read.issues.add(path, `expected "any" or !args { index, values, mask }, got variant "${v.tag}"`);
    return undefined;
  }
  const argsPath = joinPath(path, "args");
  const body = read.object(v.content, argsPath, ["index", "values", "mask"], ["index"]);
  if (body?.index === undefined) return undefined;
  const index = read.integer(body.index, joinPath(argsPath, "index"), 0);
  if (index === undefined) return undefined;
  const rule: SyscallRule = { args: { index } };
  if (body.values != null) {
    const items = read.array(body.values, joinPath(argsPath, "values")) ?? [];
    rule.args.values = items.flatMap(
      (item, i) => read.integer(item, joinPath(joinPath(argsPath, "values"), i), 0) ?? [],
    );
  }
  if (body.mask != null)
    setIfDefined(rule.args, "mask", read.integer(body.mask, joinPath(argsPath, "mask"), 0));
  return rule;
}

export function decodeSelinux(read: Reader, value: Raw): Selinux | undefined {
  const raw = read.object(value, "selinux", ["mount_context", "exec"]);
  if (raw === undefined) return undefined;
  const context = (key: "mount_context" | "exec") =>
    raw[key] == null ? null : (read.string(raw[key], joinPath("selinux", key)) ?? null);
  return { mount_context: context("mount_context"), exec: context("exec") };
}

export function decodeRlimits(
  read: Reader,
  value: Raw,
): Partial<Record<RLimitResource, RLimitValue>> | undefined {
  const map = read.map(value, "rlimits");
  if (map === undefined) return undefined;
  const out: Partial<Record<RLimitResource, RLimitValue>> = {};
  for (const [key, item] of Object.entries(map)) {
    const path = joinPath("rlimits", key);
    const resource = read.oneOf(key, path, RLIMIT_RESOURCES);
    const body = read.object(item, path, ["soft", "hard"]);
    if (resource === undefined || body === undefined) continue;
    const limit = (field: "soft" | "hard") =>
      body[field] == null ? null : (read.integer(body[field], joinPath(path, field), 0) ?? null);
    out[resource] = { soft: limit("soft"), hard: limit("hard") };
  }
  return out;
}

export function decodeSockets(read: Reader, value: Raw): Record<string, Socket> | undefined {
  const map = read.map(value, "sockets");
  if (map === undefined) return undefined;
  const out: Record<string, Socket> = {};
  for (const [name, item] of Object.entries(map)) {
    const path = joinPath("sockets", name);
    const body = read.object(item, path, ["type", "mode", "uid", "gid", "passcred"], ["type", "mode"]);
    if (body?.type === undefined || body.mode === undefined) continue;
    const type = read.oneOf(body.type, joinPath(path, "type"), SOCKET_TYPES);
    const mode = read.integer(body.mode, joinPath(path, "mode"), 0, U32_MAX);
    if (type === undefined || mode === undefined) continue;
    const socket: Socket = { type, mode };
    readIntegers(read, body, path, socket, [
      ["uid", 0, U32_MAX],
      ["gid", 0, U32_MAX],
    ]);
    if (body.passcred != null)
      setIfDefined(socket, "passcred", read.boolean(body.passcred, joinPath(path, "passcred")));
    out[name] = socket;
  }
  return out;
}

export function decodeIo(read: Reader, value: Raw): Io | undefined {
  const raw = read.object(value, "io", ["stdout", "stderr"], ["stdout", "stderr"]);
  if (raw?.stdout === undefined || raw.stderr === undefined) return undefined;
  const stdout = read.oneOf(raw.stdout, "io.stdout", OUTPUTS);
  const stderr = read.oneOf(raw.stderr, "io.stderr", OUTPUTS);
  return stdout === undefined || stderr === undefined ? undefined : { stdout, stderr };
}
