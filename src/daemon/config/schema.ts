/**
 * skiffd's configuration: the TOML schema, its defaults and validation. Every rejection names
 * the key path and the reason (e.g. `console.main.url: expected unix:// or tcp://`).
 */
import {
  DecodeError,
  array,
  boolean,
  checkedString,
  literal,
  optional,
  record,
  string,
  struct,
  unsigned,
  withDefault,
  type Codec,
} from "../../common/schema.js";
import { parseConfigDuration as parseDuration, parseConfigSize as parseSize } from "../../common/units.js";
import { DEFAULT_CONSOLE_URL, parseConsoleUrl, type ConsoleUrl } from "../../protocol/url.js";
import { FULL_PERMISSIONS, isPermission, type Permission } from "../../protocol/permissions.js";
import { cgroupNameProblem } from "../../common/cgroup-name.js";

export interface ConsoleOptions {
  /** Longest accepted request line in bytes; a longer line closes the connection. */
  maxRequestSize: number;
  /** Requests served per second per connection; excess requests wait (never dropped). */
  maxRequestsPerSec: number;
  /** Time a new connection has to send `connect`. */
  connectTimeoutMs: number;
  /** Largest NPK accepted by `install`. */
  maxInstallSize: number;
  /** Connections a listener serves at once; further ones are closed as they are accepted. */
  maxConnections: number;
  /**
   * A connection past its handshake that sends no complete request for this long is closed; 0:
   * never. Connections subscribed to notifications are exempt (waiting is what they are for).
   */
  idleTimeoutMs: number;
  /** Unread output (responses, notifications) over which a connection's requests are not read. */
  maxUnreadSize: number;
  /** A connection whose unread output does not drain within this time is closed. */
  unreadTimeoutMs: number;
}

export interface ListenerConfig {
  id: string;
  url: ListenerUrl;
  permissions: ReadonlySet<Permission>;
  /** File mode of a Unix socket. */
  mode: number;
  options: ConsoleOptions;
}

export type ListenerUrl = ConsoleUrl;

export interface RepositoryConfig {
  id: string;
  type: "fs" | "mem";
  /** Directory of an `fs` repository. */
  dir?: string;
  /** Path of the Ed25519 public key; a keyed repository verifies every package. */
  key?: string;
  mountOnStart: boolean;
  /** Packages come with the device image; `install` and `uninstall` are refused. */
  readOnly: boolean;
  capacityNum?: number;
  capacitySize?: number;
}

export interface DaemonConfig {
  stateDir: string;
  runDir: string;
  dataDir: string;
  logDir: string;
  /** Name of Skiff's top-level cgroup. */
  cgroup: string;
  eventBufferSize: number;
  /** Per-connection notification queue length before a client is told it lagged. */
  notificationBufferSize: number;
  /** Bytes all console connections together may buffer (unfinished requests, unread output). */
  consoleBufferBudget: number;
  listeners: ListenerConfig[];
  repositories: RepositoryConfig[];
  /** Containers running at once, daemon-wide (at most MAX_CONTAINERS). */
  maxContainers: number;
  /** Send memory events for every container, not only those whose manifest sets `oom_monitor`. */
  oomMonitorAll: boolean;
  /** Process groups: parent cgroups whose limits hold for all their containers together. */
  groups: GroupConfig[];
  /** The Prometheus endpoint; undefined = off. */
  metrics: MetricsConfig | undefined;
  /**
   * The OCI runtime: runc, or crun where the host's cgroup layout allows it. `probeTimeoutMs`:
   * how long the health probe's `--version` may take (default 500 ms).
   */
  runtime: { kind: "runc" | "crun"; path?: string; probeTimeoutMs?: number };
  /** At shutdown, leave containers running under their monitors (see `skiffd --keep-containers`). */
  keepContainers: boolean;
  /** Prepare every autostart container at daemon start, so its start only opens the exec fifo. */
  prepareAutostart: boolean;
  /** Per-container log rotation: `<log_dir>/<name>/container.log` plus `files` rotated copies. */
  containerLogs: { maxBytes: number; files: number };
  /** A freeze (pause, suspend) must complete within this time, else it is undone and fails. */
  freezeTimeoutMs: number;
  // --- Keys that came with Northstar compatibility (docs/northstar.md) ---
  /** `token_validity`: how long a console token verifies after its creation. */
  tokenValidityMs: number;
  /** `npk_stream_timeout`: an install whose payload sends nothing for this long is aborted. */
  npkStreamTimeoutMs: number;
  /** `socket_dir`: where manifest sockets are created (default `<run_dir>/sockets`). */
  socketDir?: string;
  /** `[container_console]`: limits and timeouts of container console connections. */
  containerConsoleOptions: ConsoleOptions;
  /** Facts about the file worth one line in the log at start (Northstar keys without a meaning here). */
  notes: string[];
  debug: {
    logLevel: LogLevel;
    /** `[debug] commands`: run at every container start, `<PID>` and `<CONTAINER>` substituted. */
    commands: string[];
    /** Test seam: time every freeze waits in the freezer's intermediate state (0: none). */
    freezeHoldMs: number;
    /** Test seam: every freeze fails in its intermediate state (and is undone). */
    freezeFail: boolean;
  };
}

/** The most containers one daemon runs (prepared ones count); also the default of `max_containers`. */
export const MAX_CONTAINERS = 16384;

/** `[groups.<name>]`. Units as in cgroup v1 and the OCI runtime spec; absent = no limit of that kind. */
export interface GroupConfig {
  name: string;
  /** Memory limit in bytes for all containers of the group together. */
  memory?: number;
  /** v1 cpu shares, 2..262144 (or cpuWeight, not both). */
  cpuShares?: number;
  /** v2 cpu weight, 1..10000. */
  cpuWeight?: number;
  /** CFS quota in microseconds per period, >= 1000. */
  cpuQuota?: number;
  /** CFS period in microseconds, 1000..1000000. */
  cpuPeriod?: number;
  /** Maximum number of tasks in the group. */
  pids?: number;
  /** Containers of the group running at once. */
  maxContainers?: number;
}

export interface MetricsConfig {
  host: string;
  port: number;
}

export type LogLevel = "trace" | "debug" | "info" | "warn" | "error" | "fatal";

export const DEFAULT_ROOT = "/var/lib/skiff";

/** Northstar's defaults for `token_validity` and `npk_stream_timeout`. */
export const DEFAULT_TOKEN_VALIDITY_MS = 60_000;
export const DEFAULT_NPK_STREAM_TIMEOUT_MS = 10_000;

const size = (what: string): Codec<number> => ({
  decode(value, path) {
    const n = parseSize(value as string | number);
    if (n === undefined || (typeof value !== "string" && typeof value !== "number")) {
      throw new DecodeError(path, `expected a ${what} such as 1048576, "64K", "1M" or "100MB"`);
    }
    return n;
  },
  encode: (v) => v,
});

const duration: Codec<number> = {
  decode(value, path) {
    const ms = typeof value === "string" || typeof value === "number" ? parseDuration(value) : undefined;
    if (ms === undefined) throw new DecodeError(path, `expected a duration such as "500ms", "5s" or "1m"`);
    return ms;
  },
  encode: (v) => v,
};

const positive = checkedPositive();
function checkedPositive(): Codec<number> {
  return {
    decode(value, path) {
      const n = unsigned.decode(value, path);
      if (n === 0) throw new DecodeError(path, "must be greater than 0");
      return n;
    },
    encode: (v) => v,
  };
}

const listenerUrl: Codec<ListenerUrl> = {
  decode(value, path) {
    const parsed = parseConsoleUrl(string.decode(value, path));
    if (typeof parsed === "string") throw new DecodeError(path, parsed);
    return parsed;
  },
  encode: (v) => v,
};

const permissions: Codec<ReadonlySet<Permission>> = {
  decode(value, path) {
    if (value === "full") return FULL_PERMISSIONS;
    const names = array(string).decode(value, path);
    names.forEach((name, i) => {
      if (!isPermission(name))
        throw new DecodeError(`${path}[${i}]`, `unknown permission ${JSON.stringify(name)}`);
    });
    return new Set(names as Permission[]);
  },
  encode: (v) => [...v],
};

const fileMode = checkedString((s) =>
  /^0?[0-7]{3}$/.test(s) ? undefined : `expected an octal mode such as "0600"`,
);

// Northstar 0.9 has the first four (same defaults) and no connection limit, idle or unread
// timeout; 10 s is Northstar's `npk_stream_timeout`, its one stall timeout.
/**
 * The options of a container console (runtime.ts), and the defaults of a listener's. No idle
 * timeout: a container's connection holds its wake locks for as long as it is open.
 */
export const DEFAULT_CONSOLE_OPTIONS: ConsoleOptions = {
  maxRequestSize: 1024 * 1024,
  maxRequestsPerSec: 1000,
  connectTimeoutMs: 5000,
  maxInstallSize: 256 * 1024 * 1024,
  maxConnections: 256,
  idleTimeoutMs: 0,
  maxUnreadSize: 1024 * 1024,
  unreadTimeoutMs: 10_000,
};

/** A listener's default idle timeout (container consoles have none). */
export const DEFAULT_LISTENER_IDLE_TIMEOUT_MS = 5 * 60_000;

/** Default of `console_buffer_budget`. */
export const DEFAULT_CONSOLE_BUFFER_BUDGET = 64 * 1024 * 1024;

interface RawOptions {
  max_request_size?: number;
  max_requests_per_sec?: number;
  connect_timeout?: number;
  max_install_size?: number;
  max_connections?: number;
  idle_timeout?: number;
  max_unread_size?: number;
  unread_timeout?: number;
}

const optionsCodec = struct<RawOptions>({
  max_request_size: optional(size("size")),
  max_requests_per_sec: optional(positive),
  connect_timeout: optional(duration),
  max_install_size: optional(size("size")),
  max_connections: optional(positive),
  idle_timeout: optional(duration),
  max_unread_size: optional(size("size")),
  unread_timeout: optional(duration),
});

interface RawListener {
  url: ListenerUrl;
  permissions: ReadonlySet<Permission>;
  mode?: string;
  options?: RawOptions;
}

const listenerCodec = struct<RawListener>({
  url: listenerUrl,
  permissions,
  mode: optional(fileMode),
  options: optional(optionsCodec),
});

interface RawRepository {
  type: "fs" | "mem";
  dir?: string;
  key?: string;
  mount_on_start: boolean;
  read_only: boolean;
  capacity_num?: number;
  capacity_size?: number;
}

const repositoryCodec = struct<RawRepository>({
  type: literal("fs", "mem"),
  dir: optional(string),
  key: optional(string),
  mount_on_start: withDefault(boolean, () => false),
  read_only: withDefault(boolean, () => false),
  capacity_num: optional(unsigned),
  capacity_size: optional(size("size")),
});

/** An integer in [min, max]. */
function ranged(min: number, max: number): Codec<number> {
  return {
    decode(value, path) {
      const n = unsigned.decode(value, path);
      if (n < min || n > max) throw new DecodeError(path, `must be between ${min} and ${max}`);
      return n;
    },
    encode: (v) => v,
  };
}

const maxContainers = ranged(1, MAX_CONTAINERS);

interface RawGroup {
  memory?: number;
  cpu_shares?: number;
  cpu_weight?: number;
  cpu_quota?: number;
  cpu_period?: number;
  pids?: number;
  max_containers?: number;
}

const groupCodec = struct<RawGroup>({
  memory: optional(size("size")),
  cpu_shares: optional(ranged(2, 262144)),
  cpu_weight: optional(ranged(1, 10000)),
  cpu_quota: optional(ranged(1000, Number.MAX_SAFE_INTEGER)),
  cpu_period: optional(ranged(1000, 1_000_000)),
  pids: optional(positive),
  max_containers: optional(maxContainers),
});

// A group is one cgroup directory below Skiff's root, beside container cgroups ("name:version"):
// the cgroup name rule, and no ":" to keep the two apart.
function groupNameProblem(name: string): string | undefined {
  const problem = cgroupNameProblem(name);
  if (problem !== undefined) return `group name ${problem}`;
  if (name.includes(":"))
    return 'group name must not contain ":", which container cgroups (name:version) have';
  return undefined;
}

function groupFromRaw(name: string, g: RawGroup): GroupConfig {
  const problem = groupNameProblem(name);
  if (problem) throw new DecodeError(`groups.${name}`, problem);
  if (g.cpu_shares !== undefined && g.cpu_weight !== undefined) {
    throw new DecodeError(`groups.${name}.cpu_weight`, "give cpu_shares or cpu_weight, not both");
  }
  if (g.memory === 0) throw new DecodeError(`groups.${name}.memory`, "must be greater than 0");
  const group: GroupConfig = {
    name,
    memory: g.memory,
    cpuShares: g.cpu_shares,
    cpuWeight: g.cpu_weight,
    cpuQuota: g.cpu_quota,
    cpuPeriod: g.cpu_period,
    pids: g.pids,
    maxContainers: g.max_containers,
  };
  // Absent limits are absent keys, not undefined values, so a group prints and compares as written.
  return Object.fromEntries(Object.entries(group).filter(([, v]) => v !== undefined)) as GroupConfig;
}

const metricsUrl: Codec<MetricsConfig> = {
  decode(value, path) {
    const parsed = parseConsoleUrl(string.decode(value, path));
    if (typeof parsed === "string") throw new DecodeError(path, parsed);
    if (parsed.scheme !== "tcp") throw new DecodeError(path, "expected a tcp://host:port URL");
    return { host: parsed.host, port: parsed.port };
  },
  encode: (v) => `tcp://${v.host}:${v.port}`,
};

interface RawConfig {
  state_dir?: string;
  run_dir?: string;
  data_dir?: string;
  log_dir?: string;
  cgroup?: string;
  event_buffer_size?: number;
  notification_buffer_size?: number;
  console_buffer_budget?: number;
  console?: Record<string, RawListener>;
  repositories?: Record<string, RawRepository>;
  max_containers?: number;
  oom_monitor_all?: boolean;
  groups?: Record<string, RawGroup>;
  metrics?: { url: MetricsConfig };
  runtime?: { kind?: "runc" | "crun"; path?: string; probe_timeout?: number };
  keep_containers?: boolean;
  prepare_autostart?: boolean;
  container_logs?: { max_size?: number; files?: number };
  power?: { freeze_timeout?: number };
  debug?: { log_level?: LogLevel; freeze_hold?: number; freeze_fail?: boolean; commands?: string[] };
  token_validity?: number;
  npk_stream_timeout?: number;
  socket_dir?: string;
  container_console?: RawOptions;
}

const debugCommand = checkedString((s) =>
  s.trim().length > 0 && !s.includes("\0") ? undefined : "expected a command line",
);

function positiveDuration(): Codec<number> {
  return {
    decode(value, path) {
      const ms = duration.decode(value, path);
      if (ms === 0) throw new DecodeError(path, "must be greater than 0");
      return ms;
    },
    encode: (v) => v,
  };
}

const absolutePath = checkedString((s) => (s.startsWith("/") ? undefined : "must be an absolute path"));
const cgroupName = checkedString(cgroupNameProblem);

const configCodec = struct<RawConfig>({
  state_dir: optional(absolutePath),
  run_dir: optional(absolutePath),
  data_dir: optional(absolutePath),
  log_dir: optional(absolutePath),
  cgroup: optional(cgroupName),
  event_buffer_size: optional(positive),
  notification_buffer_size: optional(positive),
  console_buffer_budget: optional(size("size")),
  console: optional(record(listenerCodec)),
  repositories: optional(record(repositoryCodec)),
  max_containers: optional(maxContainers),
  oom_monitor_all: optional(boolean),
  groups: optional(record(groupCodec)),
  metrics: optional(struct({ url: metricsUrl })),
  runtime: optional(
    struct({
      kind: optional(literal("runc", "crun")),
      path: optional(absolutePath),
      probe_timeout: optional(duration),
    }),
  ),
  keep_containers: optional(boolean),
  prepare_autostart: optional(boolean),
  container_logs: optional(struct({ max_size: optional(size("size")), files: optional(unsigned) })),
  power: optional(struct({ freeze_timeout: optional(duration) })),
  debug: optional(
    struct({
      log_level: optional(literal("trace", "debug", "info", "warn", "error", "fatal")),
      freeze_hold: optional(duration),
      freeze_fail: optional(boolean),
      commands: optional(array(debugCommand)),
    }),
  ),
  token_validity: optional(duration),
  npk_stream_timeout: optional(positiveDuration()),
  socket_dir: optional(absolutePath),
  container_console: optional(optionsCodec),
});

/** Validates a parsed TOML document and fills in defaults. Throws DecodeError with the key path. */
export function configFromToml(doc: unknown): DaemonConfig {
  const raw = configCodec.decode(doc, "");
  const stateDir = raw.state_dir ?? DEFAULT_ROOT;
  const listeners = Object.entries(raw.console ?? { default: defaultListener() }).map(
    ([id, l]): ListenerConfig => ({
      id,
      url: l.url,
      permissions: l.permissions,
      mode: parseInt(l.mode ?? "0600", 8),
      options: consoleOptionsFromRaw(l.options, DEFAULT_LISTENER_IDLE_TIMEOUT_MS),
    }),
  );
  const repositories = Object.entries(raw.repositories ?? {}).map(([id, r]): RepositoryConfig => {
    if (r.type === "fs" && !r.dir)
      throw new DecodeError(`repositories.${id}.dir`, "required for fs repositories");
    if (r.type === "mem" && r.dir)
      throw new DecodeError(`repositories.${id}.dir`, "mem repositories have no dir");
    return {
      id,
      type: r.type,
      dir: r.dir,
      key: r.key,
      mountOnStart: r.mount_on_start,
      readOnly: r.read_only,
      capacityNum: r.capacity_num,
      capacitySize: r.capacity_size,
    };
  });
  return {
    stateDir,
    runDir: raw.run_dir ?? `${stateDir}/run`,
    dataDir: raw.data_dir ?? `${stateDir}/data`,
    logDir: raw.log_dir ?? `${stateDir}/log`,
    cgroup: raw.cgroup ?? "skiff",
    eventBufferSize: raw.event_buffer_size ?? 256,
    notificationBufferSize: raw.notification_buffer_size ?? 64,
    consoleBufferBudget: raw.console_buffer_budget ?? DEFAULT_CONSOLE_BUFFER_BUDGET,
    listeners,
    repositories,
    maxContainers: raw.max_containers ?? MAX_CONTAINERS,
    oomMonitorAll: raw.oom_monitor_all ?? false,
    groups: Object.entries(raw.groups ?? {}).map(([name, g]) => groupFromRaw(name, g)),
    metrics: raw.metrics?.url,
    runtime: {
      kind: raw.runtime?.kind ?? "runc",
      path: raw.runtime?.path,
      ...(raw.runtime?.probe_timeout !== undefined ? { probeTimeoutMs: raw.runtime.probe_timeout } : {}),
    },
    keepContainers: raw.keep_containers ?? false,
    prepareAutostart: raw.prepare_autostart ?? false,
    containerLogs: {
      maxBytes: raw.container_logs?.max_size ?? 1024 * 1024,
      files: raw.container_logs?.files ?? 3,
    },
    freezeTimeoutMs: raw.power?.freeze_timeout ?? 2000,
    tokenValidityMs: raw.token_validity ?? DEFAULT_TOKEN_VALIDITY_MS,
    npkStreamTimeoutMs: raw.npk_stream_timeout ?? DEFAULT_NPK_STREAM_TIMEOUT_MS,
    ...(raw.socket_dir !== undefined ? { socketDir: raw.socket_dir } : {}),
    containerConsoleOptions: consoleOptionsFromRaw(raw.container_console),
    notes: [],
    debug: {
      logLevel: raw.debug?.log_level ?? "info",
      commands: raw.debug?.commands ?? [],
      freezeHoldMs: raw.debug?.freeze_hold ?? 0,
      freezeFail: raw.debug?.freeze_fail ?? false,
    },
  };
}

/**
 * A listener's `options` and `[container_console]`: the same keys; unset keys take the defaults.
 * Listeners close idle connections after `defaultIdleTimeoutMs`; container consoles hold wake
 * locks and are exempt unless configured.
 */
function consoleOptionsFromRaw(
  o: RawOptions | undefined,
  defaultIdleTimeoutMs = DEFAULT_CONSOLE_OPTIONS.idleTimeoutMs,
): ConsoleOptions {
  return {
    maxRequestSize: o?.max_request_size ?? DEFAULT_CONSOLE_OPTIONS.maxRequestSize,
    maxRequestsPerSec: o?.max_requests_per_sec ?? DEFAULT_CONSOLE_OPTIONS.maxRequestsPerSec,
    connectTimeoutMs: o?.connect_timeout ?? DEFAULT_CONSOLE_OPTIONS.connectTimeoutMs,
    maxInstallSize: o?.max_install_size ?? DEFAULT_CONSOLE_OPTIONS.maxInstallSize,
    maxConnections: o?.max_connections ?? DEFAULT_CONSOLE_OPTIONS.maxConnections,
    idleTimeoutMs: o?.idle_timeout ?? defaultIdleTimeoutMs,
    maxUnreadSize: o?.max_unread_size ?? DEFAULT_CONSOLE_OPTIONS.maxUnreadSize,
    unreadTimeoutMs: o?.unread_timeout ?? DEFAULT_CONSOLE_OPTIONS.unreadTimeoutMs,
  };
}

function defaultListener(): RawListener {
  return {
    url: parseConsoleUrl(DEFAULT_CONSOLE_URL) as ConsoleUrl,
    permissions: FULL_PERMISSIONS,
    mode: "0600",
  };
}
