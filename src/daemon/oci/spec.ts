import type { Capability, Manifest, RLimitResource, SchedPolicy } from "../../npk/manifest/index.js";
import {
  buildMounts,
  manifestMountsProc,
  MINIMAL_DEVICES,
  SKIFF_CONSOLE_PATH_IN_CONTAINER,
  SKIFF_INIT_PATH_IN_CONTAINER,
} from "./mounts.js";
import { buildResources } from "./resources.js";
import { applyCri } from "./cri.js";
import type { CriContainerPart } from "../events/data.js";
import { compileSeccomp } from "./seccomp.js";
import type { OciCapabilities, OciNamespace, OciProcess, OciRlimit, OciSpec } from "./types.js";

export { SKIFF_INIT_PATH_IN_CONTAINER } from "./mounts.js";
export { serializeOciSpec } from "./serialize.js";
export { compileSeccomp, RUNC_EXEC_SYSCALLS, SKIFF_INIT_SYSCALLS } from "./seccomp.js";
export type * from "./types.js";

/** RLIM_INFINITY: "unlimited" in setrlimit(2) and in OCI rlimits. */
export const RLIM_INFINITY = (1n << 64n) - 1n;
/**
 * Manifest sockets are passed as fds 4, 5, ... in the order of socketNamesOf (fd 3 is the pipe
 * skiff-init writes the app's wait status to).
 */
const FIRST_SOCKET_FD = 4;

/**
 * The manifest's socket names in the order their fds are passed: sorted by name (byte order; names
 * are ASCII), as Northstar does, so fd numbers do not depend on how the manifest was written.
 */
export function socketNamesOf(manifest: Pick<Manifest, "sockets">): string[] {
  return Object.keys(manifest.sockets ?? {}).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

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
  /** A CRI container's part beyond its manifest (oci/cri.ts); its env goes in as `extraEnv`. */
  cri?: CriContainerPart;
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
  const socketNames = socketNamesOf(manifest);
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
  if (input.cri !== undefined) applyCri(spec, input.cri);
  const seccomp = compileSeccomp(
    manifest.seccomp,
    manifest.capabilities ?? [],
    input.arch ?? process.arch,
    initSyscalls(manifest, socketNames),
  );
  if (seccomp !== undefined) spec.linux.seccomp = seccomp;
  // selinux.mount_context labels the image mount only (as in Northstar; repository/executor.ts), not
  // the mounts runc makes: runc would put context= on tmpfs and friends, which fails without SELinux.
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
  // What skiff-init needs to unmount /proc, granted only to it: it drops them (--drop-cap) first.
  const caps = [...(manifest.capabilities ?? []), ...initOnlyCapabilities(manifest).map(([name]) => name)];
  const ociProcess: OciProcess = {
    terminal: false,
    user: { uid: manifest.uid, gid: manifest.gid },
    args: [SKIFF_INIT_PATH_IN_CONTAINER, ...initOptions(manifest, socketNames), "--", init, ...args],
    env: buildEnv(input, socketNames, warnings),
    cwd: "/",
    capabilities: sameInEverySet(caps),
    rlimits: buildRlimits(input, warnings),
    noNewPrivileges: true,
  };
  const gids = supplementaryGids(input, warnings);
  if (gids.length > 0) ociProcess.user.additionalGids = gids;
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

/**
 * skiff-init's options (native/init/init.c documents them): the scheduling policy it applies to
 * the app before exec (runc 1.1 ignores the OCI `scheduler` field, so the spec carries none), and
 * the socket fds it sets SO_PASSCRED on (Node cannot set socket options).
 */
function initOptions(
  manifest: Pick<Manifest, "sched" | "sockets" | "mounts" | "capabilities">,
  socketNames: string[],
): string[] {
  const options: string[] = [];
  if (!manifestMountsProc(manifest)) {
    options.push("--unmount-proc");
    for (const [, number] of initOnlyCapabilities(manifest)) options.push("--drop-cap", String(number));
  }
  if (manifest.sched !== undefined) options.push("--sched", schedOption(manifest.sched.policy));
  socketNames.forEach((name, i) => {
    if (manifest.sockets?.[name]?.passcred === true) options.push("--passcred", String(FIRST_SOCKET_FD + i));
  });
  return options;
}

/** umount2 needs CAP_SYS_ADMIN; dropping from the bounding set needs CAP_SETPCAP (numbers: capability.h). */
const UNMOUNT_CAPABILITIES: readonly [Capability, number][] = [
  ["CAP_SYS_ADMIN", 21],
  ["CAP_SETPCAP", 8],
];

/**
 * A process's capability sets, all five the same (Northstar's model: a container's process has
 * exactly its manifest's capabilities; an exec process has its container's).
 */
export function sameInEverySet(caps: readonly string[]): OciCapabilities {
  return {
    bounding: [...caps],
    effective: [...caps],
    inheritable: [...caps],
    permitted: [...caps],
    ambient: [...caps],
  };
}

/** The capabilities runc grants skiff-init beyond the manifest's, for unmounting /proc. */
function initOnlyCapabilities(manifest: Pick<Manifest, "mounts" | "capabilities">): [Capability, number][] {
  if (manifestMountsProc(manifest)) return [];
  return UNMOUNT_CAPABILITIES.filter(([name]) => !(manifest.capabilities ?? []).includes(name));
}

/** Syscalls skiff-init's options make, which a manifest's seccomp filter must let through. */
function initSyscalls(manifest: Manifest, socketNames: string[]): string[] {
  const names: string[] = [];
  if (!manifestMountsProc(manifest)) names.push("umount2", "prctl", "capget", "capset");
  if (manifest.sched !== undefined) names.push("sched_setscheduler", "getpriority", "setpriority");
  if (socketNames.some((name) => manifest.sockets?.[name]?.passcred === true)) names.push("setsockopt");
  return names;
}

function schedOption(policy: SchedPolicy): string {
  if (policy === "idle" || policy === "deadline") return policy;
  if ("other" in policy) return `other:${policy.other.nice}`;
  if ("batch" in policy) return `batch:${policy.batch.nice}`;
  if ("fifo" in policy) return `fifo:${policy.fifo.priority}`;
  return `rr:${policy.round_robin.priority}`;
}
