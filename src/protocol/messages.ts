/**
 * The console's wire model: every message, request, response, notification and error a
 * Skiff or Northstar 0.9 peer can exchange. Daemon, client and CLI all use these types; only
 * `codec.ts` knows how they look as JSON.
 *
 * In TypeScript every externally tagged Northstar enum becomes a union discriminated by `type`,
 * and the variant's fields keep their wire (snake_case) names. Skiff's additions are marked.
 */
import type { ContainerId } from "./container.js";
import type { Permission } from "./permissions.js";

export type RepositoryId = string;

// ---------------------------------------------------------------------------------------------
// Errors carried inside responses (Northstar's `Error` enum, plus Skiff's additions).

export type WireError =
  | { type: "configuration"; context: string }
  | { type: "duplicate_container"; container: ContainerId }
  | { type: "invalid_container"; container: ContainerId }
  | { type: "invalid_arguments"; cause: string }
  | { type: "mount_busy"; container: ContainerId }
  | { type: "umount_busy"; container: ContainerId }
  | { type: "start_container_started"; container: ContainerId }
  | { type: "start_container_resource"; container: ContainerId }
  | { type: "start_container_missing_resource"; container: ContainerId; resource: string; version: string }
  | { type: "start_container_failed"; container: ContainerId; error: string }
  | { type: "stop_container_not_started"; container: ContainerId }
  | { type: "invalid_repository"; repository: RepositoryId }
  | { type: "install_duplicate"; container: ContainerId }
  | { type: "critical_container"; container: ContainerId; status: ExitStatus }
  | { type: "unexpected"; error: string }
  /** Skiff: the request names something this daemon does not serve (yet). */
  | { type: "unsupported"; request: string }
  /** Skiff: starting would exceed `limit` (`max_containers` or `groups.<name>.max_containers`). */
  | { type: "limit_reached"; container: ContainerId; limit: string; max: number }
  /** Skiff: a suspend found wake locks held (before or during the freeze); the container runs on. */
  | { type: "wake_locks_exist"; container: ContainerId }
  /** Skiff: the freeze did not complete; the cgroup was thawed. */
  | { type: "suspend_failure"; container: ContainerId; error: string }
  /** Skiff: the executor (OCI runtime, monitor) is broken; `health` says what is wrong. */
  | { type: "executor_degraded"; problems: string[] }
  /** Skiff: an `exec` was refused (paused, suspended) or the runtime could not start its process. */
  | { type: "exec_failed"; container: ContainerId; error: string };

export type WireErrorType = WireError["type"];

// ---------------------------------------------------------------------------------------------
// Exit status. Northstar's shape is `{"exit":{"code":N}}` or `{"signalled":{"signal":N}}`;
// Skiff adds `reason` and `oom` inside the variant, which Northstar clients ignore.

/** Why a container ended (Skiff): normal end or poweroff, reboot request, or a monitor failure. */
export type ExitReason = "shutdown" | "reboot" | "error";

export type ExitStatus =
  | { type: "exit"; code: number; reason?: ExitReason; oom?: boolean }
  | { type: "signalled"; signal: number; reason?: ExitReason; oom?: boolean };

// ---------------------------------------------------------------------------------------------
// Handshake.

/**
 * The console's two dialects (docs/console.md): `northstar`, exactly what Northstar 0.9.2's
 * model decodes, and `skiff`, everything this model has.
 */
export type Dialect = "northstar" | "skiff";

export interface Connect {
  version: string;
  subscribe_notifications: boolean;
  /**
   * Skiff: `skiff` opts the connection into the Skiff dialect; absent (as Northstar's clients
   * send it) means `northstar`. Northstar's daemon ignores the member.
   */
  dialect?: Dialect;
}

export type ConnectNack =
  | { type: "invalid_protocol_version"; version: string }
  | { type: "permission_denied" };

// ---------------------------------------------------------------------------------------------
// Requests.

export type Request =
  | { type: "ident" }
  | { type: "inspect"; container: ContainerId }
  | { type: "install"; repository: RepositoryId; size: number }
  | { type: "kill"; container: ContainerId; signal: number }
  | { type: "list" }
  | { type: "mount"; containers: ContainerId[] }
  | { type: "repositories" }
  | { type: "shutdown" }
  | {
      type: "start";
      container: ContainerId;
      init: string | null;
      arguments: string[];
      environment: Record<string, string>;
    }
  | { type: "token_create"; target: string; shared: string }
  | { type: "token_verify"; token: string; user: string; shared: string }
  | { type: "umount"; containers: ContainerId[] }
  | { type: "uninstall"; container: ContainerId; wipe: boolean }
  /** Skiff: SIGTERM, then SIGKILL after `timeout` seconds (default: the manifest's `stop_timeout`, else 5). */
  | { type: "stop"; container: ContainerId; timeout?: number }
  /**
   * Skiff: the container's log. Without `offset`, the last `lines` lines (default 100); with the
   * `offset` of an earlier answer, the lines written since (how `skiff logs -f` follows).
   */
  | { type: "logs"; container: ContainerId; lines?: number; offset?: number }
  /** Skiff (power): freeze; pausing a paused container succeeds. */
  | { type: "pause"; container: ContainerId }
  /** Skiff (power): thaw a paused container; resuming a running one is an error. */
  | { type: "resume"; container: ContainerId }
  /**
   * Skiff (power): starnix's SuspendContainer. Answers once a wake source fired (or after
   * `max_sleep_ms`), or at once with an error when wake locks are held.
   */
  | { type: "suspend"; container: ContainerId; max_sleep_ms?: number }
  | { type: "wake_lock_acquire"; container: ContainerId; name: string; timeout_ms?: number }
  | { type: "wake_lock_release"; container: ContainerId; name: string }
  | { type: "add_wake_source"; container: ContainerId; name: string; source: WakeSource }
  | { type: "remove_wake_source"; container: ContainerId; name: string }
  /** Skiff (power): the daemon listens on `listen` and forwards to `target` in the container. */
  | {
      type: "proxy_wake_channel";
      container: ContainerId;
      name: string;
      listen: string;
      target: string;
      framing?: ProxyFraming;
    }
  /** Skiff (power): the container handled `count` (default 1) messages of channel `name`. */
  | { type: "proxy_handled"; container: ContainerId; name: string; count?: number }
  /** Skiff (power): state, locks, sources, counters and the last suspend. */
  | { type: "power"; container: ContainerId }
  /** Skiff (executor): mount, write the bundle and create the container so a start costs milliseconds. */
  | { type: "prepare"; container: ContainerId }
  /** Skiff (executor): is the executor healthy? */
  | { type: "health" }
  /**
   * Skiff: CRIU checkpoint of a running container through the OCI runtime. The container is
   * stopped afterwards (no `exit` notification: its process lives on in the image).
   */
  | { type: "checkpoint"; container: ContainerId }
  /** Skiff: starts a checkpointed container from its image; it continues where it was. */
  | { type: "restore"; container: ContainerId }
  /**
   * Skiff: runs `command` inside the running container (its namespaces and cgroup). An `ok`
   * answer turns the connection into an exec stream (protocol/exec.ts, docs/console.md).
   */
  | ExecRequest
  /**
   * Skiff: the cgroup statistics (as `inspect` shows them in `process.statistics`) of many
   * containers in one request: the running ones among `containers`, or all running ones.
   */
  | { type: "statistics"; containers?: ContainerId[] };

/** Skiff: the `exec` request; limits and checks in protocol/exec.ts. */
export interface ExecRequest {
  type: "exec";
  container: ContainerId;
  /** argv; `command[0]` is looked up in the container's PATH. */
  command: string[];
  /** Added to (and replacing) the container's environment. */
  environment: Record<string, string>;
  /** Absolute working directory; null: the container's (`/`). */
  cwd: string | null;
  /** Run as this uid (and gid); null: the container's user. */
  uid: number | null;
  gid: number | null;
  /** A pseudo-terminal for the process (stdout and stderr are then one stream). */
  tty: boolean;
  /** The client sends stdin; without it the process's stdin is at EOF from the start. */
  stdin: boolean;
}

/** Skiff: what wakes a suspended container. */
export type WakeSource =
  /** A file, FIFO or Unix socket path the daemon watches for readability (sockets: a connection). */
  | { type: "path"; path: string }
  /** Wake at an absolute time (epoch ms) or after a delay. */
  | { type: "timer"; at_ms?: number; after_ms?: number }
  /** A proxy wake channel's counter above zero. */
  | { type: "proxy"; channel: string };

export type ProxyFraming = "newline" | "length" | "datagram";

/** Skiff: the resume reason of a suspend that ended because `max_sleep_ms` passed. */
export const RESUME_REASON_TIMEOUT = "max_sleep";

export type PowerState = "awake" | "asleep" | "paused";

export interface PowerInfo {
  state: PowerState;
  /** Increases with every asleep/awake transition (watchers order by it). */
  sequence: number;
  locks: { name: string; holder: string; expires_at_ms?: number }[];
  sources: { name: string; source: WakeSource }[];
  counters: Record<string, number>;
  last_suspend: { suspend_time: number; resume_reason: string } | null;
}

export type RequestType = Request["type"];
export type RequestOf<T extends RequestType> = Extract<Request, { type: T }>;

// ---------------------------------------------------------------------------------------------
// Responses. Operations on one container answer `ok` or `error` with the container named.

export type ContainerResult =
  | { type: "ok"; container: ContainerId }
  | { type: "error"; container: ContainerId; error: WireError };

export type InstallResult = { type: "ok"; container: ContainerId } | { type: "error"; error: WireError };

export interface ProcessInfo {
  pid: number;
  /** Nanoseconds since the container's init started (Northstar reports a Duration as u64 ns). */
  uptime: number;
  statistics: Record<string, unknown>;
  /** Skiff: what started it: `request`, `autostart`, `restart` (policy), `reboot`, or `adopted`. */
  started_by?: string;
}

/** Skiff: a completed suspend: nanoseconds frozen and the names of the sources that fired. */
export type SuspendResult =
  | { type: "ok"; container: ContainerId; suspend_time: number; resume_reason: string }
  | { type: "error"; container: ContainerId; error: WireError };

export type PowerResult =
  | { type: "ok"; container: ContainerId; power: PowerInfo }
  | { type: "error"; container: ContainerId; error: WireError };

/**
 * Skiff: how an image's blocks are protected: `kernel` (dm-verity checks every block when it is
 * read), `userspace` (the whole image checked once before a plain mount), `none` (not keyed).
 */
export type VerityProtection = "kernel" | "userspace" | "none";

export interface HealthInfo {
  status: "ok" | "degraded";
  problems: string[];
  /** Skiff: the protection keyed repositories' images get on this host (`none`: no keyed repository). */
  verity?: VerityProtection;
  /** Skiff: whether `checkpoint`/`restore` work here (CRIU probed once at daemon start). */
  checkpoint?: { supported: boolean; reason?: string };
}

/** Skiff: how a `stop` ended the container. */
export type StopResult =
  | { type: "ok"; container: ContainerId; status: ExitStatus }
  | { type: "error"; container: ContainerId; error: WireError };

/** Skiff: log lines (`<time> <stream> <text>`) and the offset to continue from. */
export type LogsResult =
  | { type: "ok"; container: ContainerId; lines: string[]; offset: number }
  | { type: "error"; container: ContainerId; error: WireError };

export interface ContainerData {
  /** The package manifest in Northstar's JSON form. */
  manifest: Record<string, unknown>;
  repository: RepositoryId;
  mounted: boolean;
  process: ProcessInfo | null;
  /** Skiff: lifecycle state (`installed`, `mounted`, `running`, ...). Ignored by Northstar clients. */
  state?: string;
  /** Skiff: power state, wake locks, wake sources and proxy counters of a running container. */
  power?: PowerInfo;
  /** Skiff: the protection of the mounted image; present while it is mounted. */
  verity?: VerityProtection;
}

export type InspectResult =
  | { type: "ok"; container: ContainerId; data: ContainerData }
  | { type: "error"; container: ContainerId; error: WireError };

export type VerificationResult = "Ok" | "Invalid" | "Expired" | "Future";

/** Skiff: an exec process started (host pid); the exec stream follows the response line. */
export type ExecResult =
  | { type: "ok"; container: ContainerId; pid: number }
  | { type: "error"; container: ContainerId; error: WireError };

export type Response =
  | { type: "ident"; container: ContainerId }
  | { type: "inspect"; result: InspectResult }
  | { type: "install"; result: InstallResult }
  | { type: "kill"; result: ContainerResult }
  | { type: "list"; containers: ContainerId[] }
  | { type: "mount"; results: ContainerResult[] }
  | { type: "permission_denied"; request: Request }
  | { type: "repositories"; repositories: RepositoryId[] }
  | { type: "shutdown" }
  | { type: "start"; result: ContainerResult }
  | { type: "token"; token: string }
  | { type: "token_verification"; result: VerificationResult }
  | { type: "umount"; results: ContainerResult[] }
  | { type: "uninstall"; result: ContainerResult }
  /** Skiff: the request line could not be served at all (malformed, unknown, too large). */
  | { type: "error"; error: WireError }
  | { type: "stop"; result: StopResult }
  | { type: "logs"; result: LogsResult }
  | { type: "pause"; result: ContainerResult }
  | { type: "resume"; result: ContainerResult }
  | { type: "suspend"; result: SuspendResult }
  | { type: "wake_lock"; result: ContainerResult }
  | { type: "wake_source"; result: ContainerResult }
  | { type: "proxy"; result: ContainerResult }
  | { type: "power"; result: PowerResult }
  | { type: "prepare"; result: ContainerResult }
  | { type: "health"; health: HealthInfo }
  | { type: "checkpoint"; result: ContainerResult }
  | { type: "restore"; result: ContainerResult }
  | { type: "exec"; result: ExecResult }
  | { type: "statistics"; containers: ContainerStatistics[] };

/** One running container's entry of a `statistics` answer. */
export interface ContainerStatistics {
  container: ContainerId;
  statistics: Record<string, unknown>;
}

export type ResponseType = Response["type"];

// ---------------------------------------------------------------------------------------------
// Notifications.

export interface MemoryNotification {
  low: number | null;
  high: number | null;
  max: number | null;
  oom: number | null;
  oom_kill: number | null;
  /** Skiff: the seed's `oom_group_kill`; Northstar clients ignore it. */
  oom_group_kill?: number | null;
}

export type Notification =
  | { type: "c_group"; container: ContainerId; memory: MemoryNotification }
  | {
      type: "exit";
      container: ContainerId;
      status: ExitStatus;
      /**
       * Skiff: the identity of the instance that ended. An exit repeated after a daemon crash
       * carries the same one (docs/containers.md); on the wire it sits in the status object.
       */
      instance?: string;
    }
  | { type: "install"; container: ContainerId }
  | { type: "shutdown" }
  | { type: "started"; container: ContainerId }
  | { type: "uninstall"; container: ContainerId }
  /** Skiff: the container rebooted itself (reboot(RESTART)) and runs again with a new init. */
  | { type: "restarted"; container: ContainerId }
  /** Skiff: a container fell asleep (suspended) or woke up. */
  | { type: "power"; container: ContainerId; state: "asleep" | "awake"; sequence: number; time_ms: number }
  /** Skiff: the executor became degraded, or healthy again. */
  | { type: "health"; health: HealthInfo }
  /**
   * Skiff: this connection's notification queue overflowed and `missed` notifications were
   * dropped for it. Sent once, before the next notification that fits.
   */
  | { type: "lagged"; missed: number };

export type NotificationType = Notification["type"];

// ---------------------------------------------------------------------------------------------
// Top-level messages: exactly one key each on the wire.

export type Message =
  | { type: "connect"; connect: Connect }
  | { type: "connect_ack" }
  | { type: "connect_nack"; nack: ConnectNack }
  | { type: "request"; request: Request }
  | { type: "response"; response: Response }
  | { type: "notification"; notification: Notification };

/** The permission a request needs (Northstar's rules: start with overrides needs start_command). */
export function requiredPermission(request: Request): Permission {
  switch (request.type) {
    case "wake_lock_acquire":
    case "wake_lock_release":
      return "wake_lock";
    case "add_wake_source":
    case "remove_wake_source":
      return "wake_source";
    case "proxy_wake_channel":
    case "proxy_handled":
      return "proxy";
    case "start":
      return request.init === null &&
        request.arguments.length === 0 &&
        Object.keys(request.environment).length === 0
        ? "start"
        : "start_command";
    case "token_verify":
      return "token_verification";
    default:
      return request.type;
  }
}
