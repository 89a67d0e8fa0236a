import type { Manifest, RLimitResource, SchedPolicy } from "../../npk/manifest/index.js";
import {
  buildMounts,
  MINIMAL_DEVICES,
  SKIFF_CONSOLE_PATH_IN_CONTAINER,
  SKIFF_INIT_PATH_IN_CONTAINER,
} from "./mounts.js";
import { buildResources } from "./resources.js";
import { compileSeccomp } from "./seccomp.js";
import type { OciNamespace, OciProcess, OciRlimit, OciScheduler, OciSpec } from "./types.js";

export { SKIFF_CONSOLE_PATH_IN_CONTAINER, SKIFF_INIT_PATH_IN_CONTAINER } from "./mounts.js";
export { serializeOciSpec } from "./serialize.js";
export { compileSeccomp, RUNC_EXEC_SYSCALLS, SKIFF_INIT_SYSCALLS } from "./seccomp.js";
export type * from "./types.js";

/** RLIM_INFINITY: "unlimited" in setrlimit(2) and in OCI rlimits. */
export const RLIM_INFINITY = (1n << 64n) - 1n;
/** fd 3 in the container: the pipe skiff-init writes the app's wait status to. */
export const STATUS_FD = 3;
/** Manifest sockets are passed as fds 4, 5, ... in manifest order. */
export const FIRST_SOCKET_FD = 4;

/** Which network namespace the container gets. */
export type NetworkChoice = { kind: "new" } | { kind: "host" } | { kind: "path"; path: string };

export interface OciSpecInput {
  /** A validated manifest (from parseManifest); it is not checked again here. */
  manifest: Manifest;
  /** "name:version". */
  containerId: string;
  /** The mounted, read-only package image. */
  rootfsPath: string;
  /** Mounted root of each resource container named by a `resource` mount. */
  resourceRoots?: Readonly<Record<string, string>>;
  /** Persist mounts bind `<dataDir>/<name>`. */
  dataDir: string;
  /** Host directory for `sockets` mounts (only needed when the manifest has one). */
  socketDir?: string;
  /** Bind sources missing on the host; those mounts are skipped with a warning (Northstar does so). */
  missingBindSources?: ReadonlySet<string>;
  /** Absolute cgroup path below Skiff's subtree, e.g. /skiff/hello-world. */
  cgroupsPath: string;
  /** Host hard limits; manifest rlimits above them are clamped with a warning. RLIM_INFINITY = unlimited. */
  hostRlimitHard?: Partial<Record<RLimitResource, bigint>>;
  hostname?: string;
  /** Defaults to the manifest: none = a new empty netns, host, or `<netnsDir>/<name>`. */
  network?: NetworkChoice;
  /** Where named network namespaces live; default /run/netns. */
  netnsDir?: string;
  /** Skiff's static init on the host; bind-mounted at SKIFF_INIT_PATH_IN_CONTAINER. */
  initHostPath: string;
  /** Per-container console socket on the host, when the container may use the console. */
  consoleSocketHostPath?: string;
  /** From a start request: each one given replaces the manifest's. */
  overrides?: { init?: string; args?: string[]; env?: Record<string, string> };
  /** Added after the manifest env; runtime variables still win. */
  extraEnv?: Record<string, string>;
  /** fds the caller passes beyond stdio (runc --preserve-fds); must be 1 + the number of sockets. */
  preservedFds?: number;
  /** gid of each supplementary group name (resolved on the host); unknown names are skipped with a warning. */
  groupIds?: Readonly<Record<string, number>>;
  /** Node.js architecture name for the seccomp filter; default process.arch. */
  arch?: string;
}

export interface OciSpecResult {
  spec: OciSpec;
  warnings: string[];
  /** Value for `runc run --preserve-fds`: the status pipe plus one fd per manifest socket. */
  preserveFds: number;
}

/** runc's defaults for paths hidden from or read-only in the container. */
const MASKED_PATHS = [
  "/proc/acpi",
  "/proc/asound",
  "/proc/kcore",
  "/proc/keys",
  "/proc/latency_stats",
  "/proc/timer_list",
  "/proc/timer_stats",
  "/proc/sched_debug",
  "/sys/firmware",
  "/proc/scsi",
];
const READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

/** Builds the OCI config for starting a container. Pure: every host fact comes in through `input`. */
export function buildOciSpec(input: OciSpecInput): OciSpecResult {
  const { manifest } = input;
  const warnings: string[] = [];
  if (!input.cgroupsPath.startsWith("/")) {
    throw new Error(`${input.containerId}: cgroupsPath must be absolute, got ${input.cgroupsPath}`);
  }
  const socketNames = Object.keys(manifest.sockets ?? {});
  const preserveFds = 1 + socketNames.length;
  if (input.preservedFds !== undefined && input.preservedFds !== preserveFds) {
    throw new Error(
      `${input.containerId}: ${input.preservedFds} preserved fds given, the status pipe and ${socketNames.length} sockets need ${preserveFds}`,
    );
  }
  const spec: OciSpec = {
    ociVersion: "1.0.2",
    process: buildProcess(input, socketNames, warnings),
    root: { path: input.rootfsPath, readonly: true },
    mounts: buildMounts(
      manifest,
      {
        resourceRoots: input.resourceRoots ?? {},
        dataDir: input.dataDir,
        socketDir: input.socketDir,
        missingBindSources: input.missingBindSources,
        initHostPath: input.initHostPath,
        consoleSocketHostPath: input.consoleSocketHostPath,
      },
      warnings,
    ),
    linux: {
      namespaces: buildNamespaces(input),
      devices: [...MINIMAL_DEVICES],
      cgroupsPath: input.cgroupsPath,
      resources: buildResources(manifest.cgroups, warnings),
      maskedPaths: [...MASKED_PATHS],
      readonlyPaths: [...READONLY_PATHS],
    },
  };
  if (input.hostname !== undefined) spec.hostname = input.hostname;
  const seccomp = compileSeccomp(manifest.seccomp, manifest.capabilities ?? [], input.arch ?? process.arch);
  if (seccomp !== undefined) spec.linux.seccomp = seccomp;
  if (manifest.selinux?.mount_context != null) spec.linux.mountLabel = manifest.selinux.mount_context;
  return { spec, warnings, preserveFds };
}

function buildNamespaces(input: OciSpecInput): OciNamespace[] {
  const namespaces: OciNamespace[] = [{ type: "pid" }, { type: "ipc" }, { type: "uts" }, { type: "mount" }];
  const network = input.network ?? networkFromManifest(input);
  if (network.kind === "new") namespaces.push({ type: "network" });
  if (network.kind === "path") namespaces.push({ type: "network", path: network.path });
  return namespaces;
}

function networkFromManifest(input: OciSpecInput): NetworkChoice {
  const network = input.manifest.network;
  if (network === undefined) return { kind: "new" };
  if (network === "host") return { kind: "host" };
  return { kind: "path", path: `${input.netnsDir ?? "/run/netns"}/${network.namespace}` };
}

function buildProcess(input: OciSpecInput, socketNames: string[], warnings: string[]): OciProcess {
  const { manifest, overrides } = input;
  const init = overrides?.init ?? manifest.init;
  if (init === undefined)
    throw new Error(`${input.containerId}: a resource container (no init) cannot be started`);
  const args = overrides?.args ?? manifest.args ?? [];
  const caps = [...(manifest.capabilities ?? [])];
  const ociProcess: OciProcess = {
    terminal: false,
    user: { uid: manifest.uid, gid: manifest.gid },
    args: [SKIFF_INIT_PATH_IN_CONTAINER, "--", init, ...args],
    env: buildEnv(input, socketNames, warnings),
    cwd: "/",
    capabilities: {
      bounding: caps,
      effective: [...caps],
      inheritable: [...caps],
      permitted: [...caps],
      ambient: [...caps],
    },
    rlimits: buildRlimits(input, warnings),
    noNewPrivileges: true,
  };
  const gids = supplementaryGids(input, warnings);
  if (gids.length > 0) ociProcess.user.additionalGids = gids;
  if (manifest.sched !== undefined) {
    ociProcess.scheduler = scheduler(manifest.sched.policy);
    warnings.push("sched: runc 1.1.5 ignores process.scheduler; the policy is not applied by runc");
  }
  if (manifest.selinux?.exec != null) ociProcess.selinuxLabel = manifest.selinux.exec;
  return ociProcess;
}

/** The runtime variables, each under its NORTHSTAR_ and SKIFF_ name; they win over any other env. */
function runtimeEnv(input: OciSpecInput, socketNames: string[]): Map<string, string> {
  const entries: [string, string][] = [
    ["NAME", input.manifest.name],
    ["VERSION", input.manifest.version],
    ["CONTAINER", input.containerId],
  ];
  socketNames.forEach((name, i) => entries.push([`SOCKET_${name}`, String(FIRST_SOCKET_FD + i)]));
  const env = new Map(
    ["NORTHSTAR_", "SKIFF_"].flatMap((prefix) => entries.map(([k, v]): [string, string] => [prefix + k, v])),
  );
  // SKIFF_CONSOLE is the socket's path; skiff-init connects the app to it and puts the
  // descriptor's number in NORTHSTAR_CONSOLE, as Northstar does (docs/console.md).
  if (input.consoleSocketHostPath !== undefined) env.set("SKIFF_CONSOLE", SKIFF_CONSOLE_PATH_IN_CONTAINER);
  return env;
}

/** Manifest env (or the start request's), then extra env, then the runtime variables. */
function buildEnv(input: OciSpecInput, socketNames: string[], warnings: string[]): string[] {
  const runtime = runtimeEnv(input, socketNames);
  const requested = input.overrides?.env;
  const sources: [string, Record<string, string>][] = [
    [requested !== undefined ? "start request env" : "env", requested ?? input.manifest.env ?? {}],
    ["extra env", input.extraEnv ?? {}],
  ];
  const env = new Map<string, string>();
  for (const [origin, vars] of sources) {
    for (const [key, value] of Object.entries(vars)) {
      if (runtime.has(key)) warnings.push(`${origin}: ${key} is set by the runtime; ignored`);
      else env.set(key, value);
    }
  }
  for (const [key, value] of runtime) env.set(key, value);
  return [...env].map(([key, value]) => `${key}=${value}`);
}

function buildRlimits(input: OciSpecInput, warnings: string[]): OciRlimit[] {
  const rlimits: OciRlimit[] = [];
  for (const [resource, limit] of Object.entries(input.manifest.rlimits ?? {}) as [
    RLimitResource,
    { soft: number | null; hard: number | null },
  ][]) {
    let hard = limit.hard === null ? RLIM_INFINITY : BigInt(limit.hard);
    let soft = limit.soft === null ? hard : BigInt(limit.soft);
    const hostHard = input.hostRlimitHard?.[resource];
    if (hostHard !== undefined && hard > hostHard) {
      warnings.push(
        `rlimits.${resource}: hard limit ${describeLimit(hard)} clamped to the host's ${describeLimit(hostHard)}`,
      );
      hard = hostHard;
    }
    if (soft > hard) {
      warnings.push(
        `rlimits.${resource}: soft limit ${describeLimit(soft)} clamped to ${describeLimit(hard)}`,
      );
      soft = hard;
    }
    rlimits.push({ type: `RLIMIT_${resource.toUpperCase()}`, hard, soft });
  }
  return rlimits;
}

function describeLimit(value: bigint): string {
  return value === RLIM_INFINITY ? "unlimited" : value.toString();
}

function supplementaryGids(input: OciSpecInput, warnings: string[]): number[] {
  const gids: number[] = [];
  for (const group of input.manifest.suppl_groups ?? []) {
    const gid = input.groupIds?.[group];
    if (gid === undefined) warnings.push(`suppl_groups: unknown group ${group}; skipped`);
    else if (!gids.includes(gid)) gids.push(gid);
  }
  return gids;
}

function scheduler(policy: SchedPolicy): OciScheduler {
  if (policy === "idle") return { policy: "SCHED_IDLE" };
  if (policy === "deadline") return { policy: "SCHED_DEADLINE" };
  if ("other" in policy) return { policy: "SCHED_OTHER", nice: policy.other.nice };
  if ("batch" in policy) return { policy: "SCHED_BATCH", nice: policy.batch.nice };
  if ("fifo" in policy) return { policy: "SCHED_FIFO", priority: policy.fifo.priority };
  return { policy: "SCHED_RR", priority: policy.round_robin.priority };
}
