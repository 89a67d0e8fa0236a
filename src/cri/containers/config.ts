/**
 * CRI `ContainerConfig` → a Skiff container: its synthetic manifest (what Northstar's manifest
 * can say: name, version, init, args, uid/gid, capabilities, a /proc mount) and the CRI part
 * beside it (`CriContainerPart`: what a manifest cannot hold). Pure, and the one place request
 * text is checked: every size and count is bounded before anything is built, and every path
 * derived from request text goes through `resolveWithin`. What Skiff cannot do safely is refused
 * with the reason, never dropped silently (docs/cri.md, "Containers").
 */
import { imagePathComponents, resolveWithin, PathEscapeError } from "../../common/paths.js";
import {
  CAPABILITIES,
  ManifestError,
  validateManifest,
  type Capability,
  type Manifest,
} from "../../npk/manifest/index.js";
import type { CriContainerPart, CriMount, CriResources } from "../../daemon/events/data.js";
import type { PodSandboxRef } from "../sandbox.js";
import type { ImageAccounts } from "./accounts.js";

/** A request Skiff refuses, with the reason a client sees (gRPC INVALID_ARGUMENT). */
export class CriConfigError extends Error {
  override name = "CriConfigError";
}

/** Hard limits on a ContainerConfig, checked before anything is built from it. */
export const CONFIG_LIMITS = {
  args: 1024,
  env: 1024,
  mounts: 256,
  labels: 256,
  annotations: 256,
  keyBytes: 512,
  valueBytes: 64 * 1024,
  /** All strings of the config together. */
  totalBytes: 1024 * 1024,
  pathBytes: 4096,
  nameBytes: 253,
} as const;

/** What CreateContainer gives beside the config: the image's root and user, the pod, the id. */
export interface ContainerInput {
  /** 64 hex, chosen by Skiff. */
  id: string;
  pod: PodSandboxRef;
  /** `<data_dir>/cri/containers/<id>`. */
  dir: string;
  image: {
    id: string;
    rootfs: string;
    user: string;
    /** The image config's Entrypoint, Cmd, Env and WorkingDir (the image store's record). */
    process: { entrypoint: string[]; cmd: string[]; env: string[]; workingDir: string };
  };
  /** The image's users and groups, read when a user or group is given by name (accounts.ts). */
  accounts?: ImageAccounts;
}

/** Whether resolving the config's user needs the image's accounts (a name is given). */
export function needsAccounts(config: Message, imageUser: string): boolean {
  const security = field(field(config, "linux") as Message, "security_context") as Message;
  if (str(security, "run_as_username") !== "") return true;
  if (field(security, "run_as_user") !== null && field(security, "run_as_user") !== undefined) return false;
  return imageUser.split(":").some((part) => part !== "" && !/^\d+$/.test(part));
}

/** The translation: the record's manifest and CRI part, and what ContainerStatus reports. */
export interface TranslatedContainer {
  manifest: Manifest;
  cri: CriContainerPart;
  metadata: { name: string; attempt: number };
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** `ContainerConfig.log_path` as the kubelet gave it (relative to the pod's log directory). */
  logPathRequested: string;
}

/** The capabilities a CRI container gets by default (containerd's and CRI-O's default set). */
export const DEFAULT_CAPABILITIES: readonly Capability[] = [
  "CAP_CHOWN",
  "CAP_DAC_OVERRIDE",
  "CAP_FSETID",
  "CAP_FOWNER",
  "CAP_MKNOD",
  "CAP_NET_RAW",
  "CAP_SETGID",
  "CAP_SETUID",
  "CAP_SETFCAP",
  "CAP_SETPCAP",
  "CAP_NET_BIND_SERVICE",
  "CAP_SYS_CHROOT",
  "CAP_KILL",
  "CAP_AUDIT_WRITE",
];

/** containerd's PATH when neither the config nor the image gives one. */
const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const MAX_ID = 0xffff_ffff;
const MAX_CPU_PERIOD = 1_000_000;

type Message = Record<string, unknown> | null | undefined;

function field(message: Message, name: string): unknown {
  return message?.[name];
}

function str(message: Message, name: string): string {
  const value = field(message, name);
  return typeof value === "string" ? value : "";
}

function list(message: Message, name: string, max: number, what: string): unknown[] {
  const value = field(message, name);
  if (!Array.isArray(value)) return [];
  if (value.length > max) throw new CriConfigError(`${what}: more than ${max} entries`);
  return value as unknown[];
}

function map(message: Message, name: string, max: number, what: string): Record<string, string> {
  const value = field(message, name);
  if (value === null || typeof value !== "object") return {};
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length > max) throw new CriConfigError(`${what}: more than ${max} entries`);
  const out: Record<string, string> = {};
  for (const [key, v] of entries) {
    if (typeof v !== "string") continue;
    checkKey(key, what);
    checkValue(v, `${what}.${key}`);
    out[key] = v;
  }
  return out;
}

function checkKey(key: string, what: string): void {
  if (key === "" || Buffer.byteLength(key) > CONFIG_LIMITS.keyBytes || key.includes("\0"))
    throw new CriConfigError(
      `${what}: a key is empty, has a NUL or is longer than ${CONFIG_LIMITS.keyBytes} bytes`,
    );
}

function checkValue(value: string, what: string): void {
  if (Buffer.byteLength(value) > CONFIG_LIMITS.valueBytes || value.includes("\0"))
    throw new CriConfigError(`${what}: has a NUL or is longer than ${CONFIG_LIMITS.valueBytes} bytes`);
}

/** A non-negative integer from an int64 (proto-loader gives them as decimal strings), 0 when unset. */
function int64(message: Message, name: string, max: number, what: string): number {
  const value = field(message, name);
  const text = typeof value === "number" ? String(value) : typeof value === "string" ? value : "0";
  if (!/^-?\d{1,19}$/.test(text)) throw new CriConfigError(`${what}: not an integer`);
  const n = Number(text);
  if (n < 0 || n > max) throw new CriConfigError(`${what}: ${text} is outside 0..${max}`);
  return n;
}

/** An `Int64Value` wrapper (absent: undefined). */
function wrapped(message: Message, name: string, max: number, what: string): number | undefined {
  const value = field(message, name);
  if (value === null || value === undefined) return undefined;
  return int64(value as Message, "value", max, what);
}

/** An absolute path, normalised (`//` and a trailing `/` dropped); `.`, `..` and NUL refused. */
function absolutePath(path: string, what: string): string {
  const components =
    Buffer.byteLength(path) > CONFIG_LIMITS.pathBytes ? undefined : imagePathComponents(path);
  if (components === undefined)
    throw new CriConfigError(
      `${what}: ${JSON.stringify(path.slice(0, 100))} is not an absolute path, or holds . or .. or NUL, or is over ${CONFIG_LIMITS.pathBytes} bytes`,
    );
  return `/${components.join("/")}`;
}

/** A CRI container name as part of a Skiff container name: `[0-9A-Za-z.-]`, at most 40 characters. */
function namePart(text: string): string {
  const cleaned = text.replace(/[^0-9A-Za-z.-]/g, "-").slice(0, 40);
  return cleaned === "" || cleaned === "." || cleaned === ".." ? "x" : cleaned;
}

/**
 * The Skiff container name of a CRI container: `cri_<pod>_<container>_<id prefix>`, in the one
 * name rule's character set (Northstar clients decode it), readable in `skiff list`.
 */
export function skiffNameOf(podName: string, containerName: string, id: string): string {
  return `cri_${namePart(podName)}_${namePart(containerName)}_${id.slice(0, 12)}`;
}

function capabilityOf(name: string, what: string): Capability | "ALL" {
  const upper = name.toUpperCase();
  if (upper === "ALL") return "ALL";
  const cap = (upper.startsWith("CAP_") ? upper : `CAP_${upper}`) as Capability;
  if (!CAPABILITIES.includes(cap))
    throw new CriConfigError(`${what}: unknown capability ${JSON.stringify(name.slice(0, 64))}`);
  return cap;
}

function capabilities(security: Message): Capability[] {
  const caps = field(security, "capabilities") as Message;
  const add = list(caps, "add_capabilities", 64, "capabilities.add").map((c) =>
    capabilityOf(String(c), "capabilities.add"),
  );
  const drop = list(caps, "drop_capabilities", 64, "capabilities.drop").map((c) =>
    capabilityOf(String(c), "capabilities.drop"),
  );
  if (list(caps, "add_ambient_capabilities", 64, "capabilities.add_ambient").length > 0)
    throw new CriConfigError("ambient capabilities are not supported");
  let set = new Set<Capability>(DEFAULT_CAPABILITIES);
  if (add.includes("ALL")) set = new Set(CAPABILITIES);
  for (const c of add) if (c !== "ALL") set.add(c);
  if (drop.includes("ALL")) set.clear();
  for (const c of drop) if (c !== "ALL") set.delete(c);
  return [...set].sort();
}

function resources(linux: Message): CriResources {
  const r = field(linux, "resources") as Message;
  const out: CriResources = {};
  const period = int64(r, "cpu_period", MAX_CPU_PERIOD, "resources.cpu_period");
  const quota = int64(r, "cpu_quota", Number.MAX_SAFE_INTEGER, "resources.cpu_quota");
  const shares = int64(r, "cpu_shares", 262_144, "resources.cpu_shares");
  const memory = int64(
    r,
    "memory_limit_in_bytes",
    Number.MAX_SAFE_INTEGER,
    "resources.memory_limit_in_bytes",
  );
  if (period > 0) {
    if (period < 1000) throw new CriConfigError("resources.cpu_period: at least 1000 microseconds");
    out.cpuPeriod = period;
  }
  if (quota > 0) {
    if (quota < 1000) throw new CriConfigError("resources.cpu_quota: at least 1000 microseconds");
    out.cpuQuota = quota;
  }
  if (shares > 0) out.cpuShares = Math.max(2, shares);
  if (memory > 0) {
    // Below this the container's own init cannot start (runc refuses less than 6 MiB on v1 too).
    if (memory < 6 * 1024 * 1024) throw new CriConfigError("resources.memory_limit_in_bytes: at least 6 MiB");
    out.memoryLimitBytes = memory;
  }
  for (const [name, key] of [
    ["cpuset_cpus", "cpusetCpus"],
    ["cpuset_mems", "cpusetMems"],
  ] as const) {
    const value = str(r, name);
    if (value === "") continue;
    if (!/^[0-9,-]{1,256}$/.test(value)) throw new CriConfigError(`resources.${name}: not a CPU list`);
    out[key] = value;
  }
  if (Object.keys((field(r, "unified") as Record<string, unknown> | null) ?? {}).length > 0)
    throw new CriConfigError("resources.unified is not supported");
  return out;
}

/** `resources.oom_score_adj`, -1000..1000 (0: the runtime's default, not set). */
function oomScoreAdj(linux: Message): { oomScoreAdj?: number } {
  const value = field(field(linux, "resources") as Message, "oom_score_adj");
  const text = typeof value === "string" || typeof value === "number" ? String(value) : "0";
  if (!/^-?\d{1,4}$/.test(text) || Math.abs(Number(text)) > 1000)
    throw new CriConfigError("resources.oom_score_adj: not in -1000..1000");
  return Number(text) === 0 ? {} : { oomScoreAdj: Number(text) };
}

/** `resources` of an UpdateContainerResources request (its `linux` message). */
export function updatedResources(linux: Message): CriResources {
  return resources({ resources: linux } as Message);
}

function mounts(config: Message): CriMount[] {
  return list(config, "mounts", CONFIG_LIMITS.mounts, "mounts").map((m, i): CriMount => {
    const mount = m as Message;
    const what = `mounts[${i}]`;
    if (str(mount, "propagation") !== "" && str(mount, "propagation") !== "PROPAGATION_PRIVATE")
      throw new CriConfigError(`${what}: only private mount propagation is supported`);
    if (field(mount, "recursive_read_only") === true)
      throw new CriConfigError(`${what}: recursive read-only mounts are not supported`);
    if (list(mount, "uid_mappings", 64, what).length > 0 || list(mount, "gid_mappings", 64, what).length > 0)
      throw new CriConfigError(`${what}: id-mapped mounts are not supported`);
    if (str(field(mount, "image") as Message, "image") !== "")
      throw new CriConfigError(`${what}: image volumes are not supported`);
    return {
      containerPath: absolutePath(str(mount, "container_path"), `${what}.container_path`),
      hostPath: absolutePath(str(mount, "host_path"), `${what}.host_path`),
      readonly: field(mount, "readonly") === true,
    };
  });
}

/**
 * A user spec (`user`, `uid`, `user:group`, `uid:gid`, empty for root) against the image's
 * accounts. A name that is not there is refused; a uid without a passwd entry and no group runs
 * with gid 0 (as containerd does).
 */
function resolveUserSpec(spec: string, accounts: ImageAccounts | undefined): { uid: number; gid: number } {
  const [userPart = "", groupPart = ""] = spec.split(":", 2) as [string?, string?];
  const passwd = accounts?.passwd ?? [];
  let uid = 0;
  let primary: number | undefined;
  if (userPart === "") primary = 0;
  else if (/^\d{1,10}$/.test(userPart)) {
    uid = Number(userPart);
    primary = passwd.find((p) => p.uid === uid)?.gid;
  } else {
    const entry = passwd.find((p) => p.name === userPart);
    if (!entry)
      throw new CriConfigError(
        `user ${JSON.stringify(userPart.slice(0, 64))} is not in the image's /etc/passwd`,
      );
    uid = entry.uid;
    primary = entry.gid;
  }
  let gid = primary ?? 0;
  if (/^\d{1,10}$/.test(groupPart)) gid = Number(groupPart);
  else if (groupPart !== "") {
    const entry = accounts?.groups.find((g) => g.name === groupPart);
    if (!entry)
      throw new CriConfigError(
        `group ${JSON.stringify(groupPart.slice(0, 64))} is not in the image's /etc/group`,
      );
    gid = entry.gid;
  }
  if (uid > MAX_ID || gid > MAX_ID)
    throw new CriConfigError(`user ${JSON.stringify(spec.slice(0, 64))}: ids above ${MAX_ID}`);
  return { uid, gid };
}

function totalBytes(value: unknown, budget: { left: number }): void {
  if (typeof value === "string") budget.left -= Buffer.byteLength(value);
  else if (Array.isArray(value)) for (const v of value) totalBytes(v, budget);
  else if (value !== null && typeof value === "object")
    for (const [k, v] of Object.entries(value)) {
      budget.left -= k.length;
      totalBytes(v, budget);
    }
  if (budget.left < 0)
    throw new CriConfigError(`the container config is larger than ${CONFIG_LIMITS.totalBytes} bytes`);
}

/** Checks and translates a ContainerConfig (throws CriConfigError with the reason). */
export function translateConfig(config: Message, input: ContainerInput): TranslatedContainer {
  totalBytes(config, { left: CONFIG_LIMITS.totalBytes });
  const meta = field(config, "metadata") as Message;
  const name = str(meta, "name");
  if (name === "" || Buffer.byteLength(name) > CONFIG_LIMITS.nameBytes)
    throw new CriConfigError(`metadata.name: must be 1..${CONFIG_LIMITS.nameBytes} bytes`);
  const attempt = Number(field(meta, "attempt") ?? 0);
  const command = list(config, "command", CONFIG_LIMITS.args, "command").map(String);
  const args = list(config, "args", CONFIG_LIMITS.args, "args").map(String);
  // Kubernetes' rule: a command replaces the image's Entrypoint and Cmd; args alone replace Cmd.
  const image = input.image.process;
  const argv =
    command.length > 0
      ? [...command, ...args]
      : [...image.entrypoint, ...(args.length > 0 ? args : image.cmd)];
  if (argv.length === 0) throw new CriConfigError("no command: the config and the image name none");
  if (argv.length > CONFIG_LIMITS.args)
    throw new CriConfigError(`command and args: more than ${CONFIG_LIMITS.args}`);
  argv.forEach((a, i) => checkValue(a, `argv[${i}]`));
  if (argv[0] === "") throw new CriConfigError("command[0] is empty");
  const env: Record<string, string> = {};
  // The image's Env first, the config's envs over it.
  if (image.env.length > CONFIG_LIMITS.env)
    throw new CriConfigError(`the image's Env: more than ${CONFIG_LIMITS.env} entries`);
  for (const entry of image.env) {
    const eq = entry.indexOf("=");
    if (eq <= 0) continue;
    const key = entry.slice(0, eq);
    const value = entry.slice(eq + 1);
    checkKey(key, "the image's Env");
    checkValue(value, `the image's Env ${key}`);
    env[key] = value;
  }
  for (const [i, e] of list(config, "envs", CONFIG_LIMITS.env, "envs").entries()) {
    const key = str(e as Message, "key");
    checkKey(key, `envs[${i}]`);
    if (key.includes("=")) throw new CriConfigError(`envs[${i}]: the key has "="`);
    // KeyValue.value is `bytes` in the proto (a Buffer here); taken as UTF-8 text.
    const raw = field(e as Message, "value");
    const value = Buffer.isBuffer(raw) ? raw.toString("utf8") : typeof raw === "string" ? raw : "";
    checkValue(value, `envs[${i}]`);
    env[key] = value;
  }
  env.PATH ??= DEFAULT_PATH;
  const workingDir = str(config, "working_dir") || image.workingDir;
  if (list(config, "devices", CONFIG_LIMITS.mounts, "devices").length > 0)
    throw new CriConfigError("devices are not supported");
  if (field(config, "tty") === true || field(config, "stdin") === true)
    throw new CriConfigError(
      "tty and stdin are not supported (stdin is /dev/null and there is no terminal: Attach gives the output only)",
    );
  const linux = field(config, "linux") as Message;
  const security = field(linux, "security_context") as Message;
  if (field(security, "privileged") === true)
    throw new CriConfigError("privileged containers are not supported (Skiff cannot make them safe)");
  const pidMode = str(field(security, "namespace_options") as Message, "pid");
  if (pidMode !== "" && pidMode !== "CONTAINER")
    throw new CriConfigError(
      `namespace_options.pid ${pidMode}: only a PID namespace per container is supported`,
    );
  // run_as_user, else run_as_username, else the image's User; run_as_group over the group.
  const runAsUser = wrapped(security, "run_as_user", MAX_ID, "run_as_user");
  const runAsGroup = wrapped(security, "run_as_group", MAX_ID, "run_as_group");
  const userName = str(security, "run_as_username");
  const resolved =
    runAsUser !== undefined
      ? { uid: runAsUser, gid: resolveUserSpec(String(runAsUser), input.accounts).gid }
      : resolveUserSpec(userName !== "" ? userName : input.image.user, input.accounts);
  const uid = resolved.uid;
  const gid = runAsGroup ?? resolved.gid;
  const additionalGids = list(security, "supplemental_groups", 64, "supplemental_groups").map((g) =>
    int64({ g } as Message, "g", MAX_ID, "supplemental_groups"),
  );
  const logPathRequested = str(config, "log_path");
  let logPath: string | undefined;
  if (logPathRequested !== "" && input.pod.logDirectory !== "") {
    try {
      logPath = resolveWithin(input.pod.logDirectory, logPathRequested);
    } catch (e) {
      if (e instanceof PathEscapeError)
        throw new CriConfigError(
          `log_path ${JSON.stringify(logPathRequested.slice(0, 100))} leaves the pod's log directory`,
        );
      throw e;
    }
  }
  const skiffName = skiffNameOf(input.pod.metadata.name, name, input.id);
  const manifest: Manifest = {
    name: skiffName,
    version: `0.0.${Number.isInteger(attempt) && attempt >= 0 && attempt <= MAX_ID ? attempt : 0}`,
    init: argv[0],
    args: argv.slice(1),
    // Northstar's manifest cannot say root (uid and gid above 0): the manifest shows 1 then, and
    // the process's real ids are the CRI part's (oci/cri.ts sets them).
    uid: Math.max(1, uid),
    gid: Math.max(1, gid),
    mounts: { "/proc": { type: "proc" } },
    capabilities: capabilities(security),
  };
  try {
    validateManifest(manifest);
  } catch (e) {
    if (e instanceof ManifestError) throw new CriConfigError(`the container's manifest: ${e.message}`);
    throw e;
  }
  const cri: CriContainerPart = {
    id: input.id,
    podSandboxId: input.pod.id,
    dir: input.dir,
    imageRootfs: input.image.rootfs,
    ...(logPath === undefined ? {} : { logPath }),
    env,
    ...(workingDir === "" ? {} : { workingDir: absolutePath(workingDir, "working_dir") }),
    uid,
    gid,
    additionalGids,
    readonlyRootfs: field(security, "readonly_rootfs") === true,
    ...oomScoreAdj(linux),
    namespaces: { ...input.pod.namespaces },
    cgroupParent: input.pod.cgroupParent,
    hostname: input.pod.hostname,
    ...(input.pod.etcFiles.hosts === "" ? {} : { etcFiles: { ...input.pod.etcFiles } }),
    mounts: mounts(config),
    resources: resources(linux),
  };
  return {
    manifest,
    cri,
    metadata: { name, attempt: Number(manifest.version.split(".")[2]) },
    labels: map(config, "labels", CONFIG_LIMITS.labels, "labels"),
    annotations: map(config, "annotations", CONFIG_LIMITS.annotations, "annotations"),
    logPathRequested,
  };
}
