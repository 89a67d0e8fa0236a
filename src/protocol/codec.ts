/**
 * The console codec: Message <-> one line of JSON. Only this module (with schema.ts) knows the
 * wire shapes; everything else handles the typed model of messages.ts.
 */
import { containerIdProblem } from "./container.js";
import type {
  Connect,
  ConnectNack,
  ContainerData,
  ContainerResult,
  ExecResult,
  ExitStatus,
  InspectResult,
  InstallResult,
  LogsResult,
  MemoryNotification,
  Message,
  Notification,
  ProcessInfo,
  Request,
  Response,
  StopResult,
  SuspendResult,
  PowerInfo,
  PowerResult,
  HealthInfo,
  WakeSource,
  WireError,
} from "./messages.js";
import {
  DecodeError,
  anyObject,
  array,
  boolean,
  checkedString,
  enumeration,
  integer,
  lazy,
  literal,
  nullable,
  optional,
  record,
  string,
  struct,
  unit,
  unsigned,
  withDefault,
  type Codec,
} from "../common/schema.js";
import { messageOf } from "../common/errors.js";

export { DecodeError };

const container = checkedString(containerIdProblem);
/** Northstar's NonNulString: any string without NUL. */
const nonNul = checkedString((s) => (s.includes("\0") ? "string contains a NUL byte" : undefined));
const base64 = checkedString((s) =>
  /^[A-Za-z0-9+/]*={0,2}$/.test(s) && s.length % 4 === 0 ? undefined : "invalid base64",
);
const u64OrNull = nullable(unsigned);

const exitReason = literal("shutdown", "reboot", "error");
export const exitStatusCodec: Codec<ExitStatus> = enumeration<ExitStatus>("exit status", {
  exit: { kind: "struct", fields: { code: integer, reason: optional(exitReason), oom: optional(boolean) } },
  signalled: {
    kind: "struct",
    fields: { signal: unsigned, reason: optional(exitReason), oom: optional(boolean) },
  },
});

export const wireErrorCodec: Codec<WireError> = enumeration<WireError>("error", {
  configuration: { kind: "struct", fields: { context: string } },
  duplicate_container: { kind: "struct", fields: { container } },
  invalid_container: { kind: "struct", fields: { container } },
  invalid_arguments: { kind: "struct", fields: { cause: string } },
  mount_busy: { kind: "struct", fields: { container } },
  umount_busy: { kind: "struct", fields: { container } },
  start_container_started: { kind: "struct", fields: { container } },
  start_container_resource: { kind: "struct", fields: { container } },
  start_container_missing_resource: {
    kind: "struct",
    fields: { container, resource: string, version: string },
  },
  start_container_failed: { kind: "struct", fields: { container, error: string } },
  stop_container_not_started: { kind: "struct", fields: { container } },
  invalid_repository: { kind: "struct", fields: { repository: string } },
  install_duplicate: { kind: "struct", fields: { container } },
  critical_container: { kind: "struct", fields: { container, status: exitStatusCodec } },
  unexpected: { kind: "struct", fields: { error: string } },
  unsupported: { kind: "struct", fields: { request: string } },
  limit_reached: { kind: "struct", fields: { container, limit: string, max: unsigned } },
  wake_locks_exist: { kind: "struct", fields: { container } },
  suspend_failure: { kind: "struct", fields: { container, error: string } },
  executor_degraded: { kind: "struct", fields: { problems: array(string) } },
  exec_failed: { kind: "struct", fields: { container, error: string } },
});

const framing = literal("newline", "length", "datagram");

const wakeSource: Codec<WakeSource> = enumeration<WakeSource>("wake source", {
  path: { kind: "struct", fields: { path: string } },
  timer: { kind: "struct", fields: { at_ms: optional(unsigned), after_ms: optional(unsigned) } },
  proxy: { kind: "struct", fields: { channel: string } },
});

export const requestCodec: Codec<Request> = enumeration<Request>("request", {
  ident: unit,
  inspect: { kind: "struct", fields: { container } },
  install: { kind: "struct", fields: { repository: string, size: unsigned } },
  kill: { kind: "struct", fields: { container, signal: integer } },
  list: unit,
  mount: { kind: "struct", fields: { containers: array(container) } },
  repositories: unit,
  shutdown: unit,
  start: {
    kind: "struct",
    fields: {
      container,
      init: withDefault(nullable(nonNul), () => null),
      arguments: withDefault(array(nonNul), () => []),
      environment: withDefault(record(nonNul), () => ({})),
    },
  },
  token_create: { kind: "struct", fields: { target: string, shared: base64 } },
  token_verify: { kind: "struct", fields: { token: base64, user: string, shared: base64 } },
  umount: { kind: "struct", fields: { containers: array(container) } },
  uninstall: { kind: "struct", fields: { container, wipe: withDefault(boolean, () => false) } },
  stop: { kind: "struct", fields: { container, timeout: optional(unsigned) } },
  logs: { kind: "struct", fields: { container, lines: optional(unsigned), offset: optional(unsigned) } },
  pause: { kind: "struct", fields: { container } },
  resume: { kind: "struct", fields: { container } },
  suspend: { kind: "struct", fields: { container, max_sleep_ms: optional(unsigned) } },
  wake_lock_acquire: { kind: "struct", fields: { container, name: string, timeout_ms: optional(unsigned) } },
  wake_lock_release: { kind: "struct", fields: { container, name: string } },
  add_wake_source: { kind: "struct", fields: { container, name: string, source: wakeSource } },
  remove_wake_source: { kind: "struct", fields: { container, name: string } },
  proxy_wake_channel: {
    kind: "struct",
    fields: { container, name: string, listen: string, target: string, framing: optional(framing) },
  },
  proxy_handled: { kind: "struct", fields: { container, name: string, count: optional(unsigned) } },
  power: { kind: "struct", fields: { container } },
  prepare: { kind: "struct", fields: { container } },
  health: unit,
  checkpoint: { kind: "struct", fields: { container } },
  restore: { kind: "struct", fields: { container } },
  exec: {
    kind: "struct",
    fields: {
      container,
      command: array(nonNul),
      environment: withDefault(record(nonNul), () => ({})),
      cwd: withDefault(nullable(nonNul), () => null),
      uid: withDefault(nullable(unsigned), () => null),
      gid: withDefault(nullable(unsigned), () => null),
      tty: withDefault(boolean, () => false),
      stdin: withDefault(boolean, () => false),
    },
  },
  statistics: { kind: "struct", fields: { containers: optional(array(container)) } },
});

const containerResult: Codec<ContainerResult> = enumeration<ContainerResult>("result", {
  ok: { kind: "struct", fields: { container } },
  error: { kind: "struct", fields: { container, error: wireErrorCodec } },
});

const execResult: Codec<ExecResult> = enumeration<ExecResult>("result", {
  ok: { kind: "struct", fields: { container, pid: unsigned } },
  error: { kind: "struct", fields: { container, error: wireErrorCodec } },
});

const installResult: Codec<InstallResult> = enumeration<InstallResult>("result", {
  ok: { kind: "struct", fields: { container } },
  error: { kind: "struct", fields: { error: wireErrorCodec } },
});

const processInfo = struct<ProcessInfo>({
  pid: unsigned,
  uptime: unsigned,
  statistics: anyObject,
  started_by: optional(string),
});

const containerData = struct<ContainerData>({
  manifest: anyObject,
  repository: string,
  mounted: boolean,
  process: nullable(processInfo),
  state: optional(string),
  power: optional(lazy(() => powerInfo)),
  verity: optional(literal("kernel", "userspace", "none")),
});

const inspectResult: Codec<InspectResult> = enumeration<InspectResult>("result", {
  ok: { kind: "struct", fields: { container, data: containerData } },
  error: { kind: "struct", fields: { container, error: wireErrorCodec } },
});

const stopResult: Codec<StopResult> = enumeration<StopResult>("result", {
  ok: { kind: "struct", fields: { container, status: exitStatusCodec } },
  error: { kind: "struct", fields: { container, error: wireErrorCodec } },
});

const logsResult: Codec<LogsResult> = enumeration<LogsResult>("result", {
  ok: { kind: "struct", fields: { container, lines: array(string), offset: unsigned } },
  error: { kind: "struct", fields: { container, error: wireErrorCodec } },
});

const suspendResult: Codec<SuspendResult> = enumeration<SuspendResult>("result", {
  ok: { kind: "struct", fields: { container, suspend_time: unsigned, resume_reason: string } },
  error: { kind: "struct", fields: { container, error: wireErrorCodec } },
});

const powerInfo = struct<PowerInfo>({
  state: literal("awake", "asleep", "paused"),
  sequence: unsigned,
  locks: array(
    struct<PowerInfo["locks"][number]>({ name: string, holder: string, expires_at_ms: optional(unsigned) }),
  ),
  sources: array(struct<PowerInfo["sources"][number]>({ name: string, source: wakeSource })),
  counters: record(unsigned),
  last_suspend: nullable(
    struct<NonNullable<PowerInfo["last_suspend"]>>({ suspend_time: unsigned, resume_reason: string }),
  ),
});

const powerResult: Codec<PowerResult> = enumeration<PowerResult>("result", {
  ok: { kind: "struct", fields: { container, power: powerInfo } },
  error: { kind: "struct", fields: { container, error: wireErrorCodec } },
});

const healthInfo = struct<HealthInfo>({
  status: literal("ok", "degraded"),
  problems: array(string),
  verity: optional(literal("kernel", "userspace", "none")),
  checkpoint: optional(
    struct<NonNullable<HealthInfo["checkpoint"]>>({ supported: boolean, reason: optional(string) }),
  ),
});

export const responseCodec: Codec<Response> = enumeration<Response>("response", {
  ident: { kind: "newtype", field: "container", codec: container },
  inspect: { kind: "newtype", field: "result", codec: inspectResult },
  install: { kind: "newtype", field: "result", codec: installResult },
  kill: { kind: "newtype", field: "result", codec: containerResult },
  list: { kind: "newtype", field: "containers", codec: array(container) },
  mount: { kind: "newtype", field: "results", codec: array(containerResult) },
  permission_denied: { kind: "newtype", field: "request", codec: lazy(() => requestCodec) },
  repositories: { kind: "newtype", field: "repositories", codec: array(string) },
  shutdown: unit,
  start: { kind: "newtype", field: "result", codec: containerResult },
  token: { kind: "newtype", field: "token", codec: base64 },
  token_verification: {
    kind: "newtype",
    field: "result",
    codec: literal("Ok", "Invalid", "Expired", "Future"),
  },
  umount: { kind: "newtype", field: "results", codec: array(containerResult) },
  uninstall: { kind: "newtype", field: "result", codec: containerResult },
  error: { kind: "newtype", field: "error", codec: wireErrorCodec },
  stop: { kind: "newtype", field: "result", codec: stopResult },
  logs: { kind: "newtype", field: "result", codec: logsResult },
  pause: { kind: "newtype", field: "result", codec: containerResult },
  resume: { kind: "newtype", field: "result", codec: containerResult },
  suspend: { kind: "newtype", field: "result", codec: suspendResult },
  wake_lock: { kind: "newtype", field: "result", codec: containerResult },
  wake_source: { kind: "newtype", field: "result", codec: containerResult },
  proxy: { kind: "newtype", field: "result", codec: containerResult },
  power: { kind: "newtype", field: "result", codec: powerResult },
  prepare: { kind: "newtype", field: "result", codec: containerResult },
  health: { kind: "newtype", field: "health", codec: healthInfo },
  checkpoint: { kind: "newtype", field: "result", codec: containerResult },
  restore: { kind: "newtype", field: "result", codec: containerResult },
  exec: { kind: "newtype", field: "result", codec: execResult },
  statistics: {
    kind: "newtype",
    field: "containers",
    codec: array(struct({ container, statistics: anyObject })),
  },
});

const memoryNotification = struct<MemoryNotification>({
  low: u64OrNull,
  high: u64OrNull,
  max: u64OrNull,
  oom: u64OrNull,
  oom_kill: u64OrNull,
  oom_group_kill: optional(u64OrNull),
});

const cgroupNotification = enumeration<{ type: "memory"; memory: MemoryNotification }>(
  "cgroup notification",
  {
    memory: { kind: "newtype", field: "memory", codec: memoryNotification },
  },
);

const cgroupPayload: Codec<MemoryNotification> = {
  decode: (v, p) => cgroupNotification.decode(v, p).memory,
  encode: (memory) => cgroupNotification.encode({ type: "memory", memory }),
};

/** Skiff: an instance identity (a UUID today; any short token of these characters is taken). */
const instanceId = checkedString((s) =>
  /^[0-9A-Za-z-]{1,64}$/.test(s) ? undefined : "expected 1-64 characters of [0-9A-Za-z-]",
);

/**
 * Skiff: the exit notification's status object also holds `instance`, beside `reason` and `oom`
 * (a Northstar client ignores the member; its tuple cannot take another element). The model
 * keeps it on the notification, and this codec is the one place that moves it in and out.
 */
type ExitStatusWithInstance = ExitStatus & { instance?: string };
const exitNotificationStatus: Codec<ExitStatusWithInstance> = enumeration<ExitStatusWithInstance>(
  "exit status",
  {
    exit: {
      kind: "struct",
      fields: {
        code: integer,
        reason: optional(exitReason),
        oom: optional(boolean),
        instance: optional(instanceId),
      },
    },
    signalled: {
      kind: "struct",
      fields: {
        signal: unsigned,
        reason: optional(exitReason),
        oom: optional(boolean),
        instance: optional(instanceId),
      },
    },
  },
);

type WireNotification =
  | Exclude<Notification, { type: "exit" }>
  | { type: "exit"; container: string; status: ExitStatusWithInstance };

const notificationVariants = enumeration<WireNotification>("notification", {
  c_group: {
    kind: "tuple",
    fields: [
      ["container", container],
      ["memory", cgroupPayload],
    ],
  },
  exit: {
    kind: "tuple",
    fields: [
      ["container", container],
      ["status", exitNotificationStatus],
    ],
  },
  install: { kind: "newtype", field: "container", codec: container },
  shutdown: unit,
  started: { kind: "newtype", field: "container", codec: container },
  uninstall: { kind: "newtype", field: "container", codec: container },
  restarted: { kind: "newtype", field: "container", codec: container },
  power: {
    kind: "struct",
    fields: { container, state: literal("asleep", "awake"), sequence: unsigned, time_ms: unsigned },
  },
  health: { kind: "newtype", field: "health", codec: healthInfo },
  lagged: { kind: "struct", fields: { missed: unsigned } },
});

export const notificationCodec: Codec<Notification> = {
  decode(value, path) {
    const n = notificationVariants.decode(value, path);
    if (n.type !== "exit") return n;
    const { instance, ...status } = n.status;
    return instance === undefined ? { ...n, status } : { ...n, status, instance };
  },
  encode(n) {
    if (n.type !== "exit") return notificationVariants.encode(n);
    const { instance, ...rest } = n;
    return notificationVariants.encode(
      instance === undefined ? rest : { ...rest, status: { ...rest.status, instance } },
    );
  },
};

const connectNack: Codec<ConnectNack> = enumeration<ConnectNack>("connect nack", {
  invalid_protocol_version: { kind: "struct", fields: { version: string } },
  permission_denied: unit,
});

const connect = struct<Connect>({
  version: string,
  subscribe_notifications: withDefault(boolean, () => false),
  dialect: optional(literal("northstar", "skiff")),
});

/** Serde's ConnectAck is a unit struct: `null` on the wire. */
const connectAck: Codec<null> = {
  decode(value, path) {
    if (value !== null) throw new DecodeError(path, "expected null");
    return null;
  },
  encode: () => null,
};

/** On the wire, `connect_ack` carries serde's unit value in a newtype the model has no use for. */
type WireMessage = Exclude<Message, { type: "connect_ack" }> | { type: "connect_ack"; ack: null };

const messageCodec: Codec<WireMessage> = enumeration<WireMessage>("message", {
  connect: { kind: "newtype", field: "connect", codec: connect },
  connect_ack: { kind: "newtype", field: "ack", codec: connectAck },
  connect_nack: { kind: "newtype", field: "nack", codec: connectNack },
  request: { kind: "newtype", field: "request", codec: requestCodec },
  response: { kind: "newtype", field: "response", codec: responseCodec },
  notification: { kind: "newtype", field: "notification", codec: notificationCodec },
});

/** Encodes a message as one JSON line, newline included. */
export function encodeMessage(message: Message): string {
  const wire = messageCodec.encode(
    message.type === "connect_ack" ? { type: "connect_ack", ack: null } : message,
  );
  return JSON.stringify(wire) + "\n";
}

/**
 * Decodes one line (without its newline; surrounding white space is ignored, so "\r\n" works).
 * Throws DecodeError naming the JSON path and the reason.
 */
export function decodeMessage(line: string): Message {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (e) {
    throw new DecodeError("", `malformed JSON: ${messageOf(e)}`);
  }
  if (typeof value === "string") {
    throw new DecodeError("", `expected an object with one message key, got a string`);
  }
  const message = messageCodec.decode(value, "");
  // The newtype field `ack` carries serde's unit value; it is not part of the model.
  if (message.type === "connect_ack") return { type: "connect_ack" };
  return message;
}
