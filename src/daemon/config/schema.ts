/**
 * skiffd's configuration, declared once: every table below is one declaration (declare.ts) that
 * names each TOML key, its reader and its default, and the TypeScript types (`DaemonConfig`,
 * `ConsoleOptions`, ...) and the defaults (`DEFAULT_CONSOLE_OPTIONS`, ...) are derived from it.
 * Every rejection names the key path and the reason (e.g. `console.main.url: expected unix://
 * or tcp://`). northstar.ts rewrites Northstar's keys onto these before they are read, using
 * the same declarations. README.md and the docs/ pages describe the keys for people.
 */
import {
  DecodeError,
  array,
  boolean,
  checkedString,
  literal,
  record,
  string,
  unsigned,
  type Codec,
} from "../../common/schema.js";
import { parseConfigDuration as parseDuration, parseConfigSize as parseSize } from "../../common/units.js";
import { DEFAULT_CONSOLE_URL, parseConsoleUrl, type ConsoleUrl } from "../../protocol/url.js";
import { FULL_PERMISSIONS, isPermission, type Permission } from "../../protocol/permissions.js";
import { cgroupNameProblem } from "../../common/cgroup-name.js";
import { interfaceNameProblem, parseCidr } from "../../common/ipv4.js";
import {
  defaultsOf,
  holding,
  key,
  optionalKey,
  requiredKey,
  tableCodec,
  type Declaration,
  type Declared,
} from "./declare.js";

/** The most containers one daemon runs (prepared ones count); also the default of `max_containers`. */
export const MAX_CONTAINERS = 16384;
/** Unused images a start mounted that stay mounted (`mount_cache_size`; state/mount-cache.ts). */
export const DEFAULT_MOUNT_CACHE_SIZE = 16;

export type LogLevel = "trace" | "debug" | "info" | "warn" | "error" | "fatal";

const DEFAULT_ROOT = "/var/lib/skiff";

/** Northstar's defaults for `token_validity` and `npk_stream_timeout`. */
const DEFAULT_TOKEN_VALIDITY_MS = 60_000;
const DEFAULT_NPK_STREAM_TIMEOUT_MS = 10_000;

/** A listener's default idle timeout (container consoles have none). */
const DEFAULT_LISTENER_IDLE_TIMEOUT_MS = 5 * 60_000;

/** Default of `console_buffer_budget`. */
const DEFAULT_CONSOLE_BUFFER_BUDGET = 64 * 1024 * 1024;

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

/** A duration key: a string such as "5s" or an integer of seconds (northstar.ts checks with it too). */
export const duration: Codec<number> = {
  decode(value, path) {
    const ms = typeof value === "string" || typeof value === "number" ? parseDuration(value) : undefined;
    if (ms === undefined) throw new DecodeError(path, `expected a duration such as "500ms", "5s" or "1m"`);
    return ms;
  },
  encode: (v) => v,
};

/** `codec`, and 0 refused. */
function nonZero(codec: Codec<number>): Codec<number> {
  return {
    decode(value, path) {
      const n = codec.decode(value, path);
      if (n === 0) throw new DecodeError(path, "must be greater than 0");
      return n;
    },
    encode: (v) => v,
  };
}

const positive = nonZero(unsigned);

const listenerUrl: Codec<ConsoleUrl> = {
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

const fileModeText = checkedString((s) =>
  /^0?[0-7]{3}$/.test(s) ? undefined : `expected an octal mode such as "0600"`,
);
const fileMode: Codec<number> = {
  decode: (value, path) => parseInt(fileModeText.decode(value, path), 8),
  encode: (v) => `0${v.toString(8)}`,
};

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

const absolutePath = checkedString((s) => (s.startsWith("/") ? undefined : "must be an absolute path"));

const podCidr = checkedString((s) => {
  const parsed = parseCidr(s);
  return typeof parsed === "string" ? parsed : undefined;
});
const interfaceName = checkedString(interfaceNameProblem);
const MAX_SANDBOX_POOL = 64;
const sandboxPoolSize = ranged(0, MAX_SANDBOX_POOL);
const cgroupName = checkedString(cgroupNameProblem);
const maxContainers = ranged(1, MAX_CONTAINERS);
const debugCommand = checkedString((s) =>
  s.trim().length > 0 && !s.includes("\0") ? undefined : "expected a command line",
);

/** A TOML table of named tables (`[console.<id>]`, `[groups.<name>]`) as a list, each with its name. */
function named<T, N extends string>(
  item: Codec<T>,
  name: N,
  check: (entry: T & Record<N, string>) => T & Record<N, string> = (entry) => entry,
): Codec<(T & Record<N, string>)[]> {
  const table = record(item);
  return {
    decode: (value, path) =>
      Object.entries(table.decode(value, path)).map(([id, entry]) =>
        check({ [name]: id, ...entry } as T & Record<N, string>),
      ),
    encode: (list) => table.encode(Object.fromEntries(list.map((entry) => [entry[name], entry]))),
  };
}

/** A sub-table whose keys all have defaults: absent, it is all defaults. */
function table<D extends Declaration>(toml: string, keys: D) {
  return holding(
    key(toml, tableCodec(keys), () => defaultsOf(keys)),
    keys,
  );
}

// --- `[console.<id>.options]` and `[container_console]` ---
// Northstar 0.9 has the first four (same defaults) and no connection limit, idle or unread
// timeout; 10 s is Northstar's `npk_stream_timeout`, its one stall timeout.
/** The console options, with the idle timeout that differs between listeners and container consoles. */
function consoleOptionKeys(idleTimeoutMs: number) {
  return {
    /** Longest accepted request line in bytes; a longer line closes the connection. */
    maxRequestSize: key("max_request_size", size("size"), () => 1024 * 1024),
    /** Requests served per second per connection; excess requests wait (never dropped). */
    maxRequestsPerSec: key("max_requests_per_sec", positive, () => 1000),
    /** Time a new connection has to send `connect`. */
    connectTimeoutMs: key("connect_timeout", duration, () => 5000),
    /** Largest NPK accepted by `install`. */
    maxInstallSize: key("max_install_size", size("size"), () => 256 * 1024 * 1024),
    /** Connections a listener serves at once; further ones are closed as they are accepted. */
    maxConnections: key("max_connections", positive, () => 256),
    /**
     * A connection past its handshake that sends no complete request for this long is closed; 0:
     * never. Connections subscribed to notifications are exempt (waiting is what they are for).
     */
    idleTimeoutMs: key("idle_timeout", duration, () => idleTimeoutMs),
    /** Unread output (responses, notifications) over which a connection's requests are not read. */
    maxUnreadSize: key("max_unread_size", size("size"), () => 1024 * 1024),
    /** A connection whose unread output does not drain within this time is closed. */
    unreadTimeoutMs: key("unread_timeout", duration, () => 10_000),
  };
}

/** The console options, declared once with their defaults (`consoleOptionKeys`). */
export const CONSOLE_OPTION_KEYS = consoleOptionKeys(0);
export type ConsoleOptions = Declared<typeof CONSOLE_OPTION_KEYS>;

/**
 * The options of a container console (runtime.ts), and the defaults of a listener's. No idle
 * timeout: a container's connection holds its wake locks for as long as it is open.
 */
export const DEFAULT_CONSOLE_OPTIONS: ConsoleOptions = defaultsOf(CONSOLE_OPTION_KEYS);

// --- `[console.<id>]` ---
const LISTENER_KEYS = {
  url: requiredKey("url", listenerUrl),
  permissions: requiredKey("permissions", permissions),
  /** File mode of a Unix socket. */
  mode: key("mode", fileMode, () => 0o600),
  options: table("options", consoleOptionKeys(DEFAULT_LISTENER_IDLE_TIMEOUT_MS)),
};
export type ListenerConfig = { id: string } & Declared<typeof LISTENER_KEYS>;

/** Without `[console.*]`: one Unix socket console with full permissions. */
function defaultListeners(): ListenerConfig[] {
  return [
    {
      id: "default",
      ...defaultsOf({
        ...LISTENER_KEYS,
        url: key("url", listenerUrl, () => parseConsoleUrl(DEFAULT_CONSOLE_URL) as ConsoleUrl),
        permissions: key("permissions", permissions, () => FULL_PERMISSIONS),
      }),
    },
  ];
}

// --- `[repositories.<id>]` ---
export const REPOSITORY_KEYS = {
  type: requiredKey("type", literal("fs", "mem")),
  /** Directory of an `fs` repository. */
  dir: optionalKey("dir", string),
  /** Path of the Ed25519 public key; a keyed repository verifies every package. */
  key: optionalKey("key", string),
  mountOnStart: key("mount_on_start", boolean, () => false),
  /** Packages come with the device image; `install` into it is refused. */
  readOnly: key("read_only", boolean, () => false),
  capacityNum: optionalKey("capacity_num", unsigned),
  capacitySize: optionalKey("capacity_size", size("size")),
};
export type RepositoryConfig = { id: string } & Declared<typeof REPOSITORY_KEYS>;

function checkRepository(r: RepositoryConfig): RepositoryConfig {
  if (r.type === "fs" && !r.dir)
    throw new DecodeError(`repositories.${r.id}.dir`, "required for fs repositories");
  if (r.type === "mem" && r.dir)
    throw new DecodeError(`repositories.${r.id}.dir`, "mem repositories have no dir");
  return r;
}

// --- `[groups.<name>]`. Units as in cgroup v1 and the OCI runtime spec; absent = no limit of that kind. ---
const GROUP_KEYS = {
  /** Memory limit in bytes for all containers of the group together. */
  memory: optionalKey("memory", size("size")),
  /** v1 cpu shares, 2..262144 (or cpuWeight, not both). */
  cpuShares: optionalKey("cpu_shares", ranged(2, 262144)),
  /** v2 cpu weight, 1..10000. */
  cpuWeight: optionalKey("cpu_weight", ranged(1, 10000)),
  /** CFS quota in microseconds per period, >= 1000. */
  cpuQuota: optionalKey("cpu_quota", ranged(1000, Number.MAX_SAFE_INTEGER)),
  /** CFS period in microseconds, 1000..1000000. */
  cpuPeriod: optionalKey("cpu_period", ranged(1000, 1_000_000)),
  /** Maximum number of tasks in the group. */
  pids: optionalKey("pids", positive),
  /** Containers of the group running at once. */
  maxContainers: optionalKey("max_containers", maxContainers),
};
export type GroupConfig = { name: string } & Declared<typeof GROUP_KEYS>;

// A group is one cgroup directory below Skiff's root, beside container cgroups ("name:version"):
// the cgroup name rule, and no ":" to keep the two apart.
function groupNameProblem(name: string): string | undefined {
  const problem = cgroupNameProblem(name);
  if (problem !== undefined) return `group name ${problem}`;
  if (name.includes(":"))
    return 'group name must not contain ":", which container cgroups (name:version) have';
  return undefined;
}

function checkGroup(group: GroupConfig): GroupConfig {
  const { name } = group;
  const problem = groupNameProblem(name);
  if (problem) throw new DecodeError(`groups.${name}`, problem);
  if (group.cpuShares !== undefined && group.cpuWeight !== undefined) {
    throw new DecodeError(`groups.${name}.cpu_weight`, "give cpu_shares or cpu_weight, not both");
  }
  if (group.memory === 0) throw new DecodeError(`groups.${name}.memory`, "must be greater than 0");
  return group;
}

export interface MetricsConfig {
  host: string;
  port: number;
}

const METRICS_KEYS = { url: requiredKey("url", metricsUrl()) };

function metricsUrl(): Codec<MetricsConfig> {
  return {
    decode(value, path) {
      const parsed = parseConsoleUrl(string.decode(value, path));
      if (typeof parsed === "string") throw new DecodeError(path, parsed);
      if (parsed.scheme !== "tcp") throw new DecodeError(path, "expected a tcp://host:port URL");
      return { host: parsed.host, port: parsed.port };
    },
    encode: (v) => `tcp://${v.host}:${v.port}`,
  };
}

// --- `[cri.runtime_handlers.<name>]` (docs/cri.md, "Runtime handlers") ---
const RUNTIME_HANDLER_KEYS = {
  /** runc or crun; absent: the handler's name, when that is runc or crun. */
  kind: optionalKey("kind", literal("runc", "crun")),
  /** The binary; absent: the daemon's `[runtime] path` for its kind, else `kind` on PATH. */
  path: optionalKey("path", absolutePath),
};
export type RuntimeHandlerEntry = { name: string } & Declared<typeof RUNTIME_HANDLER_KEYS>;

/** Kubernetes' RuntimeClass handler names are DNS labels. */
const HANDLER_NAME = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

function checkRuntimeHandler(entry: RuntimeHandlerEntry): RuntimeHandlerEntry {
  const path = `cri.runtime_handlers.${entry.name}`;
  if (!HANDLER_NAME.test(entry.name)) {
    throw new DecodeError(
      path,
      "a handler name is a DNS label: a-z, 0-9 and -, at most 63, not starting or ending with -",
    );
  }
  if (entry.kind !== undefined) return entry;
  if (entry.name === "runc" || entry.name === "crun") return { ...entry, kind: entry.name };
  throw new DecodeError(
    `${path}.kind`,
    'required unless the handler is named runc or crun: "runc" or "crun"',
  );
}

/** A DNS name or IPv4 address, or a bracketed IPv6 address, and an optional port. */
const REGISTRY =
  /^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]{2,45}\])(?::([0-9]{1,5}))?$/;

/** `[cri] allowed_registries`: registries as image names carry them, `host[:port]` (cri/policy.ts). */
const registry = checkedString((text) => {
  if (text.includes("://")) return "expected host[:port], without a scheme";
  if (text.includes("/")) return "expected host[:port], without a path";
  const match = REGISTRY.exec(text);
  if (match === null) return "expected host[:port] such as 127.0.0.1:5000 or registry.example.com";
  const port = match[1];
  if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) return "port must be 1..65535";
  return undefined;
});

/**
 * The whole file. `runDir`, `dataDir` and `logDir` default to directories below `stateDir`;
 * `[power] freeze_timeout` is `freezeTimeoutMs` (configFromToml).
 */
export const CONFIG_KEYS = {
  stateDir: key("state_dir", absolutePath, () => DEFAULT_ROOT),
  runDir: optionalKey("run_dir", absolutePath),
  dataDir: optionalKey("data_dir", absolutePath),
  logDir: optionalKey("log_dir", absolutePath),
  /** Name of Skiff's top-level cgroup. */
  cgroup: key("cgroup", cgroupName, () => "skiff"),
  eventBufferSize: key("event_buffer_size", positive, () => 256),
  /** Per-connection notification queue length before a client is told it lagged. */
  notificationBufferSize: key("notification_buffer_size", positive, () => 64),
  /** Bytes all console connections together may buffer (unfinished requests, unread output). */
  consoleBufferBudget: key("console_buffer_budget", size("size"), () => DEFAULT_CONSOLE_BUFFER_BUDGET),
  listeners: holding(
    key("console", named(tableCodec(LISTENER_KEYS), "id"), defaultListeners),
    LISTENER_KEYS,
    true,
  ),
  repositories: holding(
    key("repositories", named(tableCodec(REPOSITORY_KEYS), "id", checkRepository), () => []),
    REPOSITORY_KEYS,
    true,
  ),
  /** Containers running at once, daemon-wide (at most MAX_CONTAINERS). */
  maxContainers: key("max_containers", maxContainers, () => MAX_CONTAINERS),
  /**
   * Images a start mounted that stay mounted while no instance uses them, least recently used
   * released first; 0 releases them at once. Images mounted by `mount` stay until `umount`.
   */
  mountCacheSize: key("mount_cache_size", ranged(0, MAX_CONTAINERS), () => DEFAULT_MOUNT_CACHE_SIZE),
  /** Send memory events for every container, not only those whose manifest sets `oom_monitor`. */
  oomMonitorAll: key("oom_monitor_all", boolean, () => false),
  /** Process groups: parent cgroups whose limits hold for all their containers together. */
  groups: holding(
    key("groups", named(tableCodec(GROUP_KEYS), "name", checkGroup), () => []),
    GROUP_KEYS,
    true,
  ),
  /** The Prometheus endpoint; absent = off. */
  metrics: holding(
    optionalKey(
      "metrics",
      transformed(tableCodec(METRICS_KEYS), (m) => m.url),
    ),
    METRICS_KEYS,
  ),
  /**
   * The OCI runtime: runc, or crun where the host's cgroup layout allows it. `probeTimeoutMs`:
   * how long the health probe's `--version` may take (default 500 ms).
   */
  runtime: table("runtime", {
    kind: key("kind", literal("runc", "crun"), (): "runc" | "crun" => "runc"),
    path: optionalKey("path", absolutePath),
    probeTimeoutMs: optionalKey("probe_timeout", duration),
  }),
  /** The Kubernetes CRI v1 endpoint (docs/cri.md): its Unix socket; absent = off. */
  cri: table("cri", {
    socket: optionalKey("socket", absolutePath),
    /** The pod network's IPv4 CIDR: the bridge takes its first address, pods the others. */
    podCidr: key("pod_cidr", podCidr, () => "10.87.0.0/16"),
    /** The Linux bridge pods' veths are attached to (created when missing, never removed). */
    podBridge: key("pod_bridge", interfaceName, () => "skiff0"),
    /** Pod sandboxes prepared in advance so RunPodSandbox costs milliseconds (0: none). */
    sandboxPool: key("sandbox_pool", sandboxPoolSize, () => 2),
    /** Registries images may be pulled from and containers created from; absent: any. */
    allowedRegistries: optionalKey("allowed_registries", array(registry)),
    /** `[cri.runtime_handlers.<name>]`: the RuntimeClass handlers; none: runc and crun where found. */
    runtimeHandlers: holding(
      key("runtime_handlers", named(tableCodec(RUNTIME_HANDLER_KEYS), "name", checkRuntimeHandler), () => []),
      RUNTIME_HANDLER_KEYS,
      true,
    ),
    /** The CRI streaming server (exec, port-forward): `tcp://host:port`, port 0 = ephemeral. */
    streamingAddress: key("streaming_address", metricsUrl(), () => ({ host: "127.0.0.1", port: 0 })),
  }),
  /** At shutdown, leave containers running under their monitors (see `skiffd --keep-containers`). */
  keepContainers: key("keep_containers", boolean, () => false),
  /** Prepare every autostart container at daemon start, so its start only opens the exec fifo. */
  prepareAutostart: key("prepare_autostart", boolean, () => false),
  /** Per-container log rotation: `<log_dir>/<name>/container.log` plus `files` rotated copies. */
  containerLogs: table("container_logs", {
    maxBytes: key("max_size", size("size"), () => 1024 * 1024),
    files: key("files", unsigned, () => 3),
  }),
  power: table("power", {
    /** A freeze (pause, suspend) must complete within this time, else it is undone and fails. */
    freezeTimeoutMs: key("freeze_timeout", duration, () => 2000),
  }),
  debug: table("debug", {
    logLevel: key(
      "log_level",
      literal("trace", "debug", "info", "warn", "error", "fatal"),
      (): LogLevel => "info",
    ),
    /** Test seam: time every freeze waits in the freezer's intermediate state (0: none). */
    freezeHoldMs: key("freeze_hold", duration, () => 0),
    /** Test seam: every freeze fails in its intermediate state (and is undone). */
    freezeFail: key("freeze_fail", boolean, () => false),
    /** `[debug] commands`: run at every container start, `<PID>` and `<CONTAINER>` substituted. */
    commands: key("commands", array(debugCommand), (): string[] => []),
  }),
  // --- Keys that came with Northstar compatibility (docs/northstar.md) ---
  /** `token_validity`: how long a console token verifies after its creation. */
  tokenValidityMs: key("token_validity", duration, () => DEFAULT_TOKEN_VALIDITY_MS),
  /** `npk_stream_timeout`: an install whose payload sends nothing for this long is aborted. */
  npkStreamTimeoutMs: key("npk_stream_timeout", nonZero(duration), () => DEFAULT_NPK_STREAM_TIMEOUT_MS),
  /** `socket_dir`: where manifest sockets are created (default `<run_dir>/sockets`). */
  socketDir: optionalKey("socket_dir", absolutePath),
  /** `[container_console]`: limits and timeouts of container console connections. */
  containerConsoleOptions: table("container_console", CONSOLE_OPTION_KEYS),
};

/** A codec that reads with `inner` and hands on `map` of the result (encode: not needed for config). */
function transformed<A, B>(inner: Codec<A>, map: (a: A) => B): Codec<B> {
  return {
    decode: (value, path) => map(inner.decode(value, path)),
    encode: () => {
      throw new Error("configuration values are not encoded");
    },
  };
}

type DeclaredConfig = Declared<typeof CONFIG_KEYS>;

export type DaemonConfig = Omit<DeclaredConfig, "runDir" | "dataDir" | "logDir" | "power"> & {
  runDir: string;
  dataDir: string;
  logDir: string;
  /** `[power] freeze_timeout`. */
  freezeTimeoutMs: number;
  /** Facts about the file worth one line in the log at start (Northstar keys without a meaning here). */
  notes: string[];
};

/** Validates a parsed TOML document and fills in defaults. Throws DecodeError with the key path. */
export function configFromToml(doc: unknown): DaemonConfig {
  const { power, runDir, dataDir, logDir, ...rest } = tableCodec(CONFIG_KEYS).decode(doc, "");
  return {
    ...rest,
    runDir: runDir ?? `${rest.stateDir}/run`,
    dataDir: dataDir ?? `${rest.stateDir}/data`,
    logDir: logDir ?? `${rest.stateDir}/log`,
    freezeTimeoutMs: power.freezeTimeoutMs,
    notes: [],
  };
}
