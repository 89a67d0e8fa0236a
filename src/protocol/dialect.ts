/**
 * The two dialects of the console, and the projection of Skiff's model onto Northstar's.
 *
 * A connection speaks `northstar` unless its `connect` carries `"dialect": "skiff"` (only Skiff's
 * daemon reads that member; Northstar's `Connect` ignores it). A Northstar 0.9.2 client decodes
 * every line with serde and none of its enums has a catch-all variant, so one Skiff-only
 * variant or field would end its stream. `encodeFor` is the one place where the daemon turns an
 * outgoing message into a line, and for the Northstar dialect it first applies
 * `northstarMessage`: an allow-list written from Northstar 0.9.2's `api/model.rs` and
 * `npk/manifest`. Every variant is classified by an exhaustive switch or a table over its type,
 * so a variant Skiff adds later is a compile error here until it is classified (mapped, or
 * without a Northstar form).
 */
import { encodeMessage } from "./codec.js";
import { NORTHSTAR_MANIFEST_FIELDS } from "./manifest-fields.js";
import { NORTHSTAR_PERMISSIONS } from "./permissions.js";
import type {
  ContainerData,
  ContainerResult,
  ExitStatus,
  InspectResult,
  InstallResult,
  MemoryNotification,
  Message,
  Notification,
  ProcessInfo,
  Request,
  RequestType,
  Response,
  WireError,
} from "./messages.js";
import type { Dialect } from "./messages.js";

/** The value of `connect.dialect` by which Skiff's client opts into the Skiff dialect. */
export const SKIFF_DIALECT: Dialect = "skiff";

/**
 * One outgoing line in `dialect`, or undefined when the message has no Northstar form (a
 * Skiff-only notification, which the connection skips; a Skiff-only response, after which the
 * connection closes as Northstar's console does when it cannot serve a request). `request` is
 * the request a response answers: a Skiff `error` response becomes that request's error result.
 */
export function encodeFor(dialect: Dialect, message: Message, request?: Request): string | undefined {
  if (dialect === "skiff") return encodeMessage(message);
  const projected = northstarMessage(message, request);
  return projected === undefined ? undefined : encodeMessage(projected);
}

/** Pure: `message` as Northstar 0.9.2 decodes it, or undefined if it has no Northstar form. */
export function northstarMessage(message: Message, request?: Request): Message | undefined {
  switch (message.type) {
    case "connect":
      return {
        type: "connect",
        connect: {
          version: message.connect.version,
          subscribe_notifications: message.connect.subscribe_notifications,
        },
      };
    case "connect_ack":
    case "connect_nack":
      return message;
    case "request": {
      const r = northstarRequest(message.request);
      return r && { type: "request", request: r };
    }
    case "response": {
      const r = northstarResponse(message.response, request);
      return r && { type: "response", response: r };
    }
    case "notification": {
      const n = northstarNotification(message.notification);
      return n && { type: "notification", notification: n };
    }
  }
}

/**
 * Which requests Northstar 0.9.2 has. A table over every request type, so a request Skiff adds
 * later is a compile error here until it is classified.
 */
const NORTHSTAR_REQUESTS: Record<RequestType, boolean> = {
  ident: true,
  inspect: true,
  install: true,
  kill: true,
  list: true,
  mount: true,
  repositories: true,
  shutdown: true,
  start: true,
  token_create: true,
  token_verify: true,
  umount: true,
  uninstall: true,
  stop: false,
  logs: false,
  pause: false,
  resume: false,
  suspend: false,
  wake_lock_acquire: false,
  wake_lock_release: false,
  add_wake_source: false,
  remove_wake_source: false,
  proxy_wake_channel: false,
  proxy_handled: false,
  power: false,
  prepare: false,
  health: false,
  checkpoint: false,
  restore: false,
  exec: false,
  statistics: false,
};

/** Pure: the request if Northstar 0.9.2 has it, else undefined. */
export function northstarRequest(request: Request): Request | undefined {
  if (!NORTHSTAR_REQUESTS[request.type]) return undefined;
  switch (request.type) {
    case "start":
      return {
        type: "start",
        container: request.container,
        init: request.init,
        arguments: request.arguments,
        environment: request.environment,
      };
    case "uninstall":
      return { type: "uninstall", container: request.container, wipe: request.wipe };
    default:
      return request;
  }
}

export function northstarNotification(n: Notification): Notification | undefined {
  switch (n.type) {
    case "c_group":
      return { type: "c_group", container: n.container, memory: northstarMemory(n.memory) };
    case "exit":
      return { type: "exit", container: n.container, status: northstarExitStatus(n.status) };
    case "install":
    case "started":
    case "uninstall":
      return { type: n.type, container: n.container };
    case "shutdown":
      return { type: "shutdown" };
    // A self-reboot: the `exit` (with Skiff's reason `reboot`) went before; Northstar's clients
    // expect the new instance to announce itself as any start does.
    case "restarted":
      return { type: "started", container: n.container };
    case "power":
    case "health":
    case "lagged":
      return undefined;
  }
}

function northstarMemory(m: MemoryNotification): MemoryNotification {
  return { low: m.low, high: m.high, max: m.max, oom: m.oom, oom_kill: m.oom_kill };
}

export function northstarExitStatus(s: ExitStatus): ExitStatus {
  switch (s.type) {
    case "exit":
      return { type: "exit", code: s.code };
    case "signalled":
      return { type: "signalled", signal: s.signal };
  }
}

/**
 * Pure: Skiff's errors as Northstar's `Error`. Skiff-only variants become the nearest Northstar
 * one, their reason kept in its text.
 */
export function northstarError(e: WireError): WireError {
  switch (e.type) {
    case "configuration":
    case "duplicate_container":
    case "invalid_container":
    case "invalid_arguments":
    case "mount_busy":
    case "umount_busy":
    case "start_container_started":
    case "start_container_resource":
    case "start_container_missing_resource":
    case "start_container_failed":
    case "stop_container_not_started":
    case "invalid_repository":
    case "install_duplicate":
    case "unexpected":
      return e;
    case "critical_container":
      return { type: "critical_container", container: e.container, status: northstarExitStatus(e.status) };
    case "unsupported":
      return { type: "unexpected", error: `unsupported: ${e.request}` };
    case "limit_reached":
      return {
        type: "start_container_failed",
        container: e.container,
        error: `limit reached: ${e.limit} allows ${e.max} running containers`,
      };
    case "wake_locks_exist":
      return { type: "unexpected", error: `wake locks exist for ${e.container}` };
    case "suspend_failure":
      return { type: "unexpected", error: `suspend of ${e.container} failed: ${e.error}` };
    case "executor_degraded":
      return { type: "unexpected", error: `executor degraded: ${e.problems.join("; ")}` };
    case "exec_failed":
      return { type: "unexpected", error: `exec in ${e.container} failed: ${e.error}` };
  }
}

function containerResult(r: ContainerResult): ContainerResult {
  return r.type === "ok" ? r : { type: "error", container: r.container, error: northstarError(r.error) };
}

/**
 * Pure: the response as Northstar 0.9.2 decodes it, or undefined. A Skiff `error` response (the
 * request could not be served) becomes the answered request's own error result where Northstar
 * has one.
 */
export function northstarResponse(r: Response, request?: Request): Response | undefined {
  switch (r.type) {
    case "ident":
    case "list":
    case "repositories":
    case "shutdown":
    case "token":
    case "token_verification":
      return r;
    case "permission_denied": {
      const denied = northstarRequest(r.request);
      return denied && { type: "permission_denied", request: denied };
    }
    case "inspect":
      return { type: "inspect", result: northstarInspect(r.result) };
    case "install":
      return { type: "install", result: northstarInstall(r.result) };
    case "kill":
    case "start":
    case "uninstall":
      return { type: r.type, result: containerResult(r.result) };
    case "mount":
    case "umount":
      return { type: r.type, results: r.results.map(containerResult) };
    case "error":
      return request && errorAs(request, northstarError(r.error));
    case "stop":
    case "logs":
    case "pause":
    case "resume":
    case "suspend":
    case "wake_lock":
    case "wake_source":
    case "proxy":
    case "power":
    case "prepare":
    case "health":
    case "checkpoint":
    case "restore":
    case "exec":
    case "statistics":
      return undefined;
  }
}

/**
 * The error result of `request` in Northstar's model, where it has one (of Northstar's requests,
 * only these answer with a result that can carry an error).
 */
function errorAs(request: Request, error: WireError): Response | undefined {
  switch (request.type) {
    case "inspect":
      return { type: "inspect", result: { type: "error", container: request.container, error } };
    case "install":
      return { type: "install", result: { type: "error", error } };
    case "kill":
    case "start":
    case "uninstall":
      return { type: request.type, result: { type: "error", container: request.container, error } };
    case "mount":
    case "umount":
      return {
        type: request.type,
        results: request.containers.map((container) => ({ type: "error", container, error })),
      };
    default:
      return undefined;
  }
}

function northstarInstall(r: InstallResult): InstallResult {
  return r.type === "ok" ? r : { type: "error", error: northstarError(r.error) };
}

function northstarInspect(r: InspectResult): InspectResult {
  if (r.type === "error") return { type: "error", container: r.container, error: northstarError(r.error) };
  return { type: "ok", container: r.container, data: northstarContainerData(r.data) };
}

function northstarContainerData(d: ContainerData): ContainerData {
  return {
    manifest: northstarManifest(d.manifest),
    repository: d.repository,
    mounted: d.mounted,
    process: d.process && northstarProcess(d.process),
  };
}

function northstarProcess(p: ProcessInfo): ProcessInfo {
  return { pid: p.pid, uptime: p.uptime, statistics: northstarStatistics(p.statistics) };
}

// ---------------------------------------------------------------------------------------------
// The manifest. Northstar's `Manifest` denies unknown fields, so only its own keys pass.

const NORTHSTAR_PERMISSION_SET: ReadonlySet<string> = new Set(NORTHSTAR_PERMISSIONS);

/** Skiff's keys inside Northstar's `cgroups` section. */
const SKIFF_CGROUP_KEYS: ReadonlySet<string> = new Set(["pids"]);

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * Pure: the manifest (Northstar's JSON form plus Skiff's extensions) reduced to the keys
 * Northstar's `Manifest` has. Console permissions keep Northstar's names (`full` stays `full`,
 * which for Northstar means its fifteen); Skiff's cgroup keys go.
 */
export function northstarManifest(manifest: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of NORTHSTAR_MANIFEST_FIELDS) {
    if (manifest[key] !== undefined) out[key] = manifest[key];
  }
  const console = out.console;
  if (isObject(console) && Array.isArray(console.permissions)) {
    out.console = {
      ...console,
      permissions: console.permissions.filter(
        (p) => typeof p === "string" && NORTHSTAR_PERMISSION_SET.has(p),
      ),
    };
  }
  const cgroups = out.cgroups;
  if (isObject(cgroups)) {
    out.cgroups = Object.fromEntries(Object.entries(cgroups).filter(([k]) => !SKIFF_CGROUP_KEYS.has(k)));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Statistics. Northstar fills `process.statistics` with cgroups-rs values under the keys of the
// controllers it reads (runtime/cgroups.rs): `blkio`, `cpu` ({stat}: the text of cpu.stat) and
// `memory` ({memory, kmem, kmem_tcp}). Skiff's shape (docs/console.md) has `memory`, `cpu`,
// `pids` and `io` sections with numbers; Northstar clients get the same facts under Northstar's
// keys, in cgroups-rs's field names.

const num = (v: unknown): number | undefined => (typeof v === "number" ? v : undefined);

/** Pure: Skiff's `process.statistics` under Northstar's keys. Unknown input yields `{}`. */
export function northstarStatistics(stats: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const { memory, cpu, io } = stats;
  if (isObject(memory)) {
    const stat = isObject(memory.stat) ? memory.stat : {};
    out.memory = {
      memory: {
        usage_in_bytes: num(memory.usage) ?? 0,
        max_usage_in_bytes: num(memory.peak) ?? 0,
        // cgroups-rs reports "unlimited" as u64::MAX; JSON numbers cannot hold it exactly.
        limit_in_bytes: num(memory.limit) ?? -1,
        stat,
      },
      kmem: {},
      kmem_tcp: {},
    };
  }
  if (isObject(cpu)) {
    const usageUs = Math.floor((num(cpu.usage_ns) ?? 0) / 1000);
    const throttledUs = Math.floor((num(cpu.throttled_ns) ?? 0) / 1000);
    out.cpu = {
      stat:
        `usage_usec ${usageUs}\nnr_periods ${num(cpu.periods) ?? 0}\n` +
        `nr_throttled ${num(cpu.throttled_periods) ?? 0}\nthrottled_usec ${throttledUs}\n`,
    };
  }
  if (isObject(io)) {
    out.blkio = {
      io_service_bytes_total: (num(io.read_bytes) ?? 0) + (num(io.write_bytes) ?? 0),
      io_serviced_total: (num(io.read_ops) ?? 0) + (num(io.write_ops) ?? 0),
      read_bytes: num(io.read_bytes) ?? 0,
      write_bytes: num(io.write_bytes) ?? 0,
    };
  }
  return out;
}
