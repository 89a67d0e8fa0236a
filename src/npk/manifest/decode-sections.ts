import { joinPath } from "./errors.js";
import { type Raw, type RawObject, type Reader, setIfDefined } from "./reader.js";
import {
  type BlkIoDeviceResource,
  type BlkIoDeviceThrottleResource,
  type BlkIoResources,
  type CGroups,
  type Console,
  CONSOLE_PERMISSIONS,
  type ConsolePermission,
  type CpuResources,
  type Io,
  type MemoryResources,
  OUTPUTS,
  type Power,
  type PowerProxy,
  PROXY_FRAMINGS,
  type Restart,
  RESTART_POLICIES,
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

const U16_MAX = 65_535;
const U32_MAX = 4_294_967_295;
const I64_MIN = -Number.MAX_SAFE_INTEGER;

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
  const raw = read.object(value, "sched", ["policy"], ["policy"]);
  if (raw?.policy === undefined) return undefined;
  const path = "sched.policy";
  const v = read.variant(raw.policy, path);
  if (v === undefined) return undefined;
  const inner = (field: "nice" | "priority", min: number, max: number) => {
    const body = read.object(v.content ?? null, joinPath(path, v.tag), [field], [field]);
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

export function decodeCgroups(read: Reader, value: Raw): CGroups | undefined {
  const raw = read.object(value, "cgroups", ["parent", "blkio", "cpu", "memory", "pids"]);
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
function integers<T extends object>(
  read: Reader,
  raw: RawObject,
  path: string,
  out: T,
  spec: [keyof T & string, number, number][],
) {
  for (const [key, min, max] of spec) {
    if (raw[key] != null)
      setIfDefined(out, key, read.integer(raw[key], joinPath(path, key), min, max) as T[typeof key]);
  }
}

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
  const raw = read.object(value, path, [
    "weight",
    "leaf_weight",
    "weight_device",
    ...THROTTLE_LISTS,
    "attrs",
  ]);
  if (raw === undefined) return undefined;
  const out = {} as BlkIoResources;
  integers(read, raw, path, out, [
    ["weight", 0, U16_MAX],
    ["leaf_weight", 0, U16_MAX],
  ]);
  const list = <T extends object>(
    key: string,
    fields: string[],
    required: string[],
    spec: [keyof T & string, number, number][],
  ) => {
    const items = raw[key] == null ? [] : (read.array(raw[key], joinPath(path, key)) ?? []);
    return items.flatMap((item, i) => {
      const itemPath = joinPath(joinPath(path, key), i);
      const body = read.object(item, itemPath, fields, required);
      if (body === undefined) return [];
      const entry = {} as T;
      integers(read, body, itemPath, entry, spec);
      return [entry];
    });
  };
  out.weight_device = list<BlkIoDeviceResource>(
    "weight_device",
    ["major", "minor", "weight", "leaf_weight"],
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
  const fields = [
    "cpus",
    "mems",
    "shares",
    "quota",
    "period",
    "realtime_runtime",
    "realtime_period",
    "attrs",
  ];
  const raw = read.object(value, path, fields);
  if (raw === undefined) return undefined;
  const out: CpuResources = {};
  if (raw.cpus != null) setIfDefined(out, "cpus", read.string(raw.cpus, joinPath(path, "cpus")));
  if (raw.mems != null) setIfDefined(out, "mems", read.string(raw.mems, joinPath(path, "mems")));
  integers(read, raw, path, out, [
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
  const raw = read.object(value, path, ["oom_monitor", ...limits, "swappiness", "attrs"]);
  if (raw === undefined) return undefined;
  const out: MemoryResources = { oom_monitor: false };
  if (raw.oom_monitor != null)
    out.oom_monitor = read.boolean(raw.oom_monitor, joinPath(path, "oom_monitor")) ?? false;
  integers(read, raw, path, out, [
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
    integers(read, body, path, socket, [
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

export function decodeRestart(read: Reader, value: Raw): Restart | undefined {
  const raw = read.object(value, "restart", ["policy", "max_retries", "backoff"], ["policy"]);
  if (raw?.policy === undefined) return undefined;
  const policy = read.oneOf(raw.policy, "restart.policy", RESTART_POLICIES);
  if (policy === undefined) return undefined;
  const out: Restart = { policy };
  integers(read, raw, "restart", out, [["max_retries", 0, Number.MAX_SAFE_INTEGER]]);
  if (raw.backoff != null) {
    const backoff = read.object(raw.backoff, "restart.backoff", ["initial", "max"], ["initial", "max"]);
    if (backoff?.initial !== undefined && backoff.max !== undefined) {
      const initial = read.string(backoff.initial, "restart.backoff.initial");
      const max = read.string(backoff.max, "restart.backoff.max");
      if (initial !== undefined && max !== undefined) out.backoff = { initial, max };
    }
  }
  return out;
}

export function decodePower(read: Reader, value: Raw): Power | undefined {
  const raw = read.object(value, "power", ["idle_suspend_after", "proxies"]);
  if (raw === undefined) return undefined;
  const out: Power = {};
  if (raw.idle_suspend_after != null) {
    setIfDefined(out, "idle_suspend_after", read.string(raw.idle_suspend_after, "power.idle_suspend_after"));
  }
  if (raw.proxies != null) {
    const items = read.array(raw.proxies, "power.proxies") ?? [];
    out.proxies = items.flatMap((item, i): PowerProxy[] => {
      const path = joinPath("power.proxies", i);
      const body = read.object(
        item,
        path,
        ["name", "listen", "target", "framing"],
        ["name", "listen", "target"],
      );
      if (body?.name === undefined || body.listen === undefined || body.target === undefined) return [];
      const name = read.string(body.name, joinPath(path, "name"));
      const listen = read.string(body.listen, joinPath(path, "listen"));
      const target = read.string(body.target, joinPath(path, "target"));
      if (name === undefined || listen === undefined || target === undefined) return [];
      const proxy: PowerProxy = { name, listen, target };
      if (body.framing != null)
        setIfDefined(proxy, "framing", read.oneOf(body.framing, joinPath(path, "framing"), PROXY_FRAMINGS));
      return [proxy];
    });
  }
  return out;
}
