/**
 * The manifest of a Northstar 0.9 package, in the JSON form Northstar's serde serialization produces
 * (snake_case keys, externally tagged enums, mounts tagged by `type`, mount options as a comma separated
 * string). The daemon sends this object unchanged in `inspect` responses. Optional fields are absent when
 * not set. Fields marked "Skiff extension" are not part of Northstar and never appear in a Northstar
 * manifest; see docs/manifest.md.
 */
import { PERMISSIONS, type Permission } from "../../protocol/permissions.js";

export interface Manifest {
  name: string;
  /** Semantic version, normalized to `major.minor.patch` like Northstar does. */
  version: string;
  console?: Console;
  init?: string;
  args?: string[];
  env?: Record<string, string>;
  uid: number;
  gid: number;
  sched?: Sched;
  mounts?: Record<string, Mount>;
  autostart?: Autostart;
  cgroups?: CGroups;
  network?: Network;
  seccomp?: Seccomp;
  selinux?: Selinux;
  capabilities?: Capability[];
  suppl_groups?: string[];
  rlimits?: Partial<Record<RLimitResource, RLimitValue>>;
  sockets?: Record<string, Socket>;
  io?: Io;
  /** Arbitrary data bundled with the package; the runtime does not interpret it. */
  custom?: JsonValue;
  /** Skiff extension. */
  restart?: Restart;
  /** Skiff extension: grace period between SIGTERM and SIGKILL, a duration string. */
  stop_timeout?: string;
  /** Skiff extension. */
  prepare?: boolean;
  /** Skiff extension: name of the process group this container belongs to. */
  group?: string;
  /** Skiff extension. */
  power?: Power;
}

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/**
 * Permissions a container's console may hold: the console's own list (Northstar's fifteen and
 * Skiff's additions, such as `wake_lock` and `proxy` for power management from inside).
 */
export const CONSOLE_PERMISSIONS = PERMISSIONS;
export type ConsolePermission = Permission;

/** `"full"` stands for every permission (Northstar serializes a complete set as "full"). */
export interface Console {
  permissions: "full" | ConsolePermission[];
}

export type SchedPolicy =
  | { other: { nice: number } }
  | { fifo: { priority: number } }
  | { round_robin: { priority: number } }
  | { batch: { nice: number } }
  | "idle"
  | "deadline";

export interface Sched {
  policy: SchedPolicy;
}

export const MOUNT_OPTIONS = ["rw", "noexec", "nosuid", "nodev", "rec"] as const;
export type MountOption = (typeof MOUNT_OPTIONS)[number];

export interface BindMount {
  type: "bind";
  /** Path on the host. */
  host: string;
  /** Comma separated mount options, absent when none. */
  options?: string;
}

export interface ResourceMount {
  type: "resource";
  name: string;
  /** Version requirement (Rust semver syntax, e.g. `>=1.0.0`). */
  version: string;
  /** Absolute directory inside the resource container. */
  dir: string;
  options?: string;
}

export interface TmpfsMount {
  type: "tmpfs";
  /** Size in bytes. */
  size: number;
}

export type Mount =
  | BindMount
  | ResourceMount
  | TmpfsMount
  | { type: "dev" }
  | { type: "persist" }
  | { type: "proc" }
  | { type: "sockets" }
  | { type: "sysfs" };

export type MountType = Mount["type"];

export type Autostart = "relaxed" | "critical";

export interface CGroups {
  parent?: string;
  blkio?: BlkIoResources;
  cpu?: CpuResources;
  memory?: MemoryResources;
  /** Skiff extension. */
  pids?: { max: number };
}

export interface BlkIoDeviceResource {
  major: number;
  minor: number;
  weight?: number;
  leaf_weight?: number;
}

export interface BlkIoDeviceThrottleResource {
  major: number;
  minor: number;
  rate: number;
}

/** Northstar always serializes the device lists (empty when not given). */
export interface BlkIoResources {
  weight?: number;
  leaf_weight?: number;
  weight_device: BlkIoDeviceResource[];
  throttle_read_bps_device: BlkIoDeviceThrottleResource[];
  throttle_read_iops_device: BlkIoDeviceThrottleResource[];
  throttle_write_bps_device: BlkIoDeviceThrottleResource[];
  throttle_write_iops_device: BlkIoDeviceThrottleResource[];
  attrs?: Record<string, string>;
}

export interface CpuResources {
  cpus?: string;
  mems?: string;
  shares?: number;
  quota?: number;
  period?: number;
  realtime_runtime?: number;
  realtime_period?: number;
  attrs?: Record<string, string>;
}

export interface MemoryResources {
  /** Always present (default false), as Northstar serializes it. */
  oom_monitor: boolean;
  kernel_memory_limit?: number;
  memory_hard_limit?: number;
  memory_soft_limit?: number;
  kernel_tcp_memory_limit?: number;
  memory_swap_limit?: number;
  swappiness?: number;
  attrs?: Record<string, string>;
}

/** `"host"` joins the host network, `{ namespace }` joins a named netns; absent means a new empty netns. */
export type Network = "host" | { namespace: string };

export type SyscallRule = "any" | { args: SyscallArgRule };

export interface SyscallArgRule {
  /** Argument index, 0..5. */
  index: number;
  /** The syscall is allowed when the argument equals one of these. */
  values?: number[];
  /** The syscall is allowed when the argument has no bits set outside this mask. */
  mask?: number;
}

export interface Seccomp {
  profile?: "default";
  allow?: Record<string, SyscallRule>;
}

/** Northstar serializes unset contexts as null. */
export interface Selinux {
  mount_context: string | null;
  exec: string | null;
}

export const CAPABILITIES = [
  "CAP_CHOWN",
  "CAP_DAC_OVERRIDE",
  "CAP_DAC_READ_SEARCH",
  "CAP_FOWNER",
  "CAP_FSETID",
  "CAP_KILL",
  "CAP_SETGID",
  "CAP_SETUID",
  "CAP_SETPCAP",
  "CAP_LINUX_IMMUTABLE",
  "CAP_NET_BIND_SERVICE",
  "CAP_NET_BROADCAST",
  "CAP_NET_ADMIN",
  "CAP_NET_RAW",
  "CAP_IPC_LOCK",
  "CAP_IPC_OWNER",
  "CAP_SYS_MODULE",
  "CAP_SYS_RAWIO",
  "CAP_SYS_CHROOT",
  "CAP_SYS_PTRACE",
  "CAP_SYS_PACCT",
  "CAP_SYS_ADMIN",
  "CAP_SYS_BOOT",
  "CAP_SYS_NICE",
  "CAP_SYS_RESOURCE",
  "CAP_SYS_TIME",
  "CAP_SYS_TTY_CONFIG",
  "CAP_MKNOD",
  "CAP_LEASE",
  "CAP_AUDIT_WRITE",
  "CAP_AUDIT_CONTROL",
  "CAP_SETFCAP",
  "CAP_MAC_OVERRIDE",
  "CAP_MAC_ADMIN",
  "CAP_SYSLOG",
  "CAP_WAKE_ALARM",
  "CAP_BLOCK_SUSPEND",
  "CAP_AUDIT_READ",
  "CAP_PERFMON",
  "CAP_BPF",
  "CAP_CHECKPOINT_RESTORE",
] as const;
export type Capability = (typeof CAPABILITIES)[number];

export const RLIMIT_RESOURCES = [
  "as",
  "core",
  "cpu",
  "data",
  "fsize",
  "locks",
  "memlock",
  "msgqueue",
  "nice",
  "nofile",
  "nproc",
  "rss",
  "rtprio",
  "rttime",
  "sigpending",
  "stack",
] as const;
export type RLimitResource = (typeof RLIMIT_RESOURCES)[number];

/** null means unlimited; Northstar serializes both keys always. */
export interface RLimitValue {
  soft: number | null;
  hard: number | null;
}

export const SOCKET_TYPES = ["stream", "datagram", "seq_packet"] as const;
export type SocketType = (typeof SOCKET_TYPES)[number];

export interface Socket {
  type: SocketType;
  /** Permission bits of the socket file. */
  mode: number;
  uid?: number;
  gid?: number;
  passcred?: boolean;
}

export const OUTPUTS = ["discard", "pipe", "inherit"] as const;
export type Output = (typeof OUTPUTS)[number];

export interface Io {
  stdout: Output;
  stderr: Output;
}

export const RESTART_POLICIES = ["no", "on-failure", "always"] as const;
export type RestartPolicy = (typeof RESTART_POLICIES)[number];

/** Skiff extension: what to do when the container exits. */
export interface Restart {
  policy: RestartPolicy;
  max_retries?: number;
  backoff?: { initial: string; max: string };
}

export const PROXY_FRAMINGS = ["newline", "length", "datagram"] as const;
export type ProxyFraming = (typeof PROXY_FRAMINGS)[number];

/** Skiff extension: a socket Skiff listens on while the container is suspended or stopped. */
export interface PowerProxy {
  name: string;
  listen: string;
  target: string;
  framing?: ProxyFraming;
}

/** Skiff extension: power management. */
export interface Power {
  idle_suspend_after?: string;
  proxies?: PowerProxy[];
}
