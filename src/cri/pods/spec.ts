/**
 * A `RunPodSandboxRequest` read into a `PodSpec`: everything Skiff keeps of it, validated and
 * bounded. Pure. The request is hostile input: every string and every list has a hard bound
 * checked before anything is kept; hostnames and DNS entries are checked strictly because they
 * are written into files and into the kernel; nothing here ever becomes part of a path.
 */
import { isIP } from "node:net";
import type { PodSandboxMetadata } from "../sandbox.js";
import { invalid, precondition } from "./errors.js";

/** Bounds on request data (Kubernetes' own limits where it has one). */
export const LIMITS = {
  /** metadata name, namespace and uid (Kubernetes: DNS subdomain, 253). */
  metadataBytes: 253,
  labels: 64,
  labelKeyBytes: 317,
  labelValueBytes: 1024,
  annotations: 256,
  /** Kubernetes' limit on all annotations of an object together. */
  annotationBytes: 256 * 1024,
  /** glibc reads at most 3 nameservers. */
  dnsServers: 3,
  /** Kubernetes' limit on search domains. */
  dnsSearches: 32,
  dnsSearchBytes: 2048,
  dnsOptions: 16,
  portMappings: 64,
  runtimeHandlerBytes: 64,
  logDirectoryBytes: 4096,
} as const;

export type NamespaceModeName = "POD" | "CONTAINER" | "NODE" | "TARGET";

export interface PortMappingSpec {
  protocol: "TCP";
  containerPort: number;
  hostPort: number;
  /** "" = every host address. */
  hostIp: string;
}

export interface DnsSpec {
  servers: string[];
  searches: string[];
  options: string[];
}

/** Pod cgroup limits in CgroupLimits units (bytes, µs, shares). */
export interface PodResources {
  memoryLimit?: number;
  cpuShares?: number;
  cpuQuota?: number;
  cpuPeriod?: number;
  cpusetCpus?: string;
  cpusetMems?: string;
}

export interface PodSpec {
  metadata: PodSandboxMetadata;
  /** "" for a pod in the node's UTS namespace (the host's name is used). */
  hostname: string;
  logDirectory: string;
  /** undefined: the host's resolv.conf. */
  dns: DnsSpec | undefined;
  portMappings: PortMappingSpec[];
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** Which namespaces the pod holds (NODE mode: not held, the host's is used). */
  holds: { network: boolean; ipc: boolean; uts: boolean };
  /** The modes as asked, reported back in PodSandboxStatus. */
  modes: { network: NamespaceModeName; pid: NamespaceModeName; ipc: NamespaceModeName };
  resources: PodResources;
  runtimeHandler: string;
}

type Message = Record<string, unknown> | null | undefined;

const bytes = (s: string): number => Buffer.byteLength(s);

function field(message: Message, name: string): unknown {
  return message === null || message === undefined ? undefined : message[name];
}

function text(message: Message, name: string, what: string, max: number): string {
  const value = field(message, name);
  if (value === undefined || value === null) return "";
  if (typeof value !== "string") throw invalid(`${what}: expected a string`);
  if (bytes(value) > max) throw invalid(`${what}: longer than ${max} bytes`);
  // Control characters would end lines of the files these strings reach, or of logs.
  if ([...value].some((c) => c < " " || c === "\u007f"))
    throw invalid(`${what}: contains control characters`);
  return value;
}

function list(message: Message, name: string, what: string, max: number): unknown[] {
  const value = field(message, name) ?? [];
  if (!Array.isArray(value)) throw invalid(`${what}: expected a list`);
  if (value.length > max) throw invalid(`${what}: more than ${max} entries`);
  return value;
}

/** A 64-bit integer field (a decimal string or a number on the wire) as a safe integer. */
function int64(message: Message, name: string, what: string): number {
  const value = field(message, name) ?? 0;
  const n = typeof value === "string" ? Number(value) : value;
  if (typeof n !== "number" || !Number.isSafeInteger(n)) throw invalid(`${what}: not an integer`);
  return n;
}

function stringMap(
  message: Message,
  name: string,
  what: string,
  bounds: { count: number; keyBytes: number; valueBytes: number; totalBytes?: number },
): Record<string, string> {
  const value = field(message, name) ?? {};
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw invalid(`${what}: expected a map`);
  }
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length > bounds.count) throw invalid(`${what}: more than ${bounds.count} entries`);
  const out: Record<string, string> = {};
  let total = 0;
  for (const [key, v] of entries) {
    if (typeof v !== "string") throw invalid(`${what}: values must be strings`);
    if (key === "" || bytes(key) > bounds.keyBytes) {
      throw invalid(`${what}: a key is empty or longer than ${bounds.keyBytes} bytes`);
    }
    if (bytes(v) > bounds.valueBytes)
      throw invalid(`${what}[${key}]: longer than ${bounds.valueBytes} bytes`);
    total += bytes(key) + bytes(v);
    if (bounds.totalBytes !== undefined && total > bounds.totalBytes) {
      throw invalid(`${what}: more than ${bounds.totalBytes} bytes together`);
    }
    // A null-prototype-free copy: "__proto__" as a key must stay data.
    Object.defineProperty(out, key, { value: v, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i;

/** Why `name` is not a hostname the kernel and resolvers take (RFC 1123 labels, at most 64 bytes). */
export function hostnameProblem(name: string): string | undefined {
  if (name === "") return "empty";
  if (bytes(name) > 64) return "longer than 64 bytes (the kernel's HOST_NAME_MAX)";
  if (!name.split(".").every((label) => LABEL.test(label))) {
    return "not a hostname: dot-separated labels of letters, digits and '-', not starting or ending with '-'";
  }
  return undefined;
}

/** Why `path` is not a pod's log directory ("" is none; else absolute, without '..'). */
export function logDirectoryProblem(path: string): string | undefined {
  if (path === "" || (path.startsWith("/") && !path.split("/").includes(".."))) return undefined;
  return "must be an absolute path without '..'";
}

/** Why `name` is not a DNS search domain (RFC 1123 labels, at most 253 bytes, an optional trailing dot). */
export function domainProblem(name: string): string | undefined {
  const bare = name.endsWith(".") ? name.slice(0, -1) : name;
  if (bare === "" || bytes(bare) > 253) return "empty or longer than 253 bytes";
  if (!bare.split(".").every((label) => LABEL.test(label))) return "not a domain name";
  return undefined;
}

/** resolv.conf options: `name` or `name:value` (ndots:5, timeout:2, edns0, single-request-reopen). */
const DNS_OPTION = /^[a-z][a-z0-9-]{0,31}(:[0-9]{1,4})?$/i;

function namespaceMode(value: unknown, what: string): NamespaceModeName {
  const mode = value ?? "POD";
  if (mode === "POD" || mode === "CONTAINER" || mode === "NODE" || mode === "TARGET") return mode;
  throw invalid(`${what}: unknown namespace mode ${JSON.stringify(mode)}`);
}

function resources(message: Message, what: string): PodResources {
  if (message === null || message === undefined) return {};
  const out: PodResources = {};
  const memory = int64(message, "memory_limit_in_bytes", `${what}.memory_limit_in_bytes`);
  if (memory < 0) throw invalid(`${what}.memory_limit_in_bytes: negative`);
  if (memory > 0) out.memoryLimit = memory;
  const shares = int64(message, "cpu_shares", `${what}.cpu_shares`);
  if (shares < 0) throw invalid(`${what}.cpu_shares: negative`);
  if (shares > 0) out.cpuShares = shares;
  const quota = int64(message, "cpu_quota", `${what}.cpu_quota`);
  if (quota > 0) out.cpuQuota = quota;
  const period = int64(message, "cpu_period", `${what}.cpu_period`);
  if (period < 0) throw invalid(`${what}.cpu_period: negative`);
  if (period > 0) out.cpuPeriod = period;
  for (const [name, key] of [
    ["cpuset_cpus", "cpusetCpus"],
    ["cpuset_mems", "cpusetMems"],
  ] as const) {
    const set = text(message, name, `${what}.${name}`, 256);
    if (set === "") continue;
    if (!/^[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*$/.test(set))
      throw invalid(`${what}.${name}: not a cpuset list`);
    out[key] = set;
  }
  return out;
}

/**
 * The pod's cgroup limits: `resources` (the pod's own) plus the runtime's `overhead` (RuntimeClass
 * overhead, charged to the pod as Kubernetes does). A limit the pod does not set stays unset:
 * overhead alone limits nothing.
 */
export function podResources(linux: Message): PodResources {
  const own = resources(field(linux, "resources") as Message, "linux.resources");
  const overhead = resources(field(linux, "overhead") as Message, "linux.overhead");
  const out: PodResources = { ...own };
  if (own.memoryLimit !== undefined && overhead.memoryLimit !== undefined) {
    out.memoryLimit = own.memoryLimit + overhead.memoryLimit;
  }
  if (own.cpuShares !== undefined && overhead.cpuShares !== undefined) {
    out.cpuShares = own.cpuShares + overhead.cpuShares;
  }
  if (own.cpuQuota !== undefined && overhead.cpuQuota !== undefined) {
    // Overhead's quota rescaled to the pod's period (both default to the kernel's 100 ms).
    const period = own.cpuPeriod ?? 100_000;
    out.cpuQuota = own.cpuQuota + Math.ceil((overhead.cpuQuota * period) / (overhead.cpuPeriod ?? 100_000));
  }
  return out;
}

/** Reads and checks the request; throws PodError (INVALID_ARGUMENT, FAILED_PRECONDITION). */
export function readPodSpec(request: Message): PodSpec {
  const config = field(request, "config") as Message;
  if (config === null || config === undefined) throw invalid("config: missing");
  const meta = field(config, "metadata") as Message;
  if (meta === null || meta === undefined) throw invalid("config.metadata: missing");
  const max = LIMITS.metadataBytes;
  const metadata: PodSandboxMetadata = {
    name: text(meta, "name", "config.metadata.name", max),
    namespace: text(meta, "namespace", "config.metadata.namespace", max),
    uid: text(meta, "uid", "config.metadata.uid", max),
    attempt: Number(field(meta, "attempt") ?? 0),
  };
  if (metadata.name === "") throw invalid("config.metadata.name: empty");
  if (!Number.isInteger(metadata.attempt) || metadata.attempt < 0 || metadata.attempt > 0xffffffff) {
    throw invalid("config.metadata.attempt: not a 32-bit unsigned integer");
  }

  const linux = field(config, "linux") as Message;
  const security = field(linux, "security_context") as Message;
  const options = field(security, "namespace_options") as Message;
  const modes = {
    network: namespaceMode(field(options, "network"), "namespace_options.network"),
    // Without namespace_options at all, the PID mode is the kubelet's default, CONTAINER (proto3
    // would read the absent enum as POD, which a client that sent nothing did not ask for).
    pid:
      options === null || options === undefined
        ? "CONTAINER"
        : namespaceMode(field(options, "pid"), "namespace_options.pid"),
    ipc: namespaceMode(field(options, "ipc"), "namespace_options.ipc"),
  };
  for (const kind of ["network", "ipc", "pid"] as const) {
    if (modes[kind] === "TARGET") throw precondition(`namespace_options.${kind}: TARGET is not supported`);
  }
  if (modes.pid === "POD") {
    throw precondition(
      "namespace_options.pid: POD (shareProcessNamespace) is not supported: Skiff holds a pod's namespaces " +
        "without a process, and a PID namespace dies with its first process",
    );
  }
  const userns = field(options, "userns_options") as Message;
  if (userns !== null && userns !== undefined && (field(userns, "mode") ?? "POD") !== "NODE") {
    throw precondition("namespace_options.userns_options: user namespaces are not supported");
  }
  const sysctls = field(linux, "sysctls");
  if (sysctls !== null && sysctls !== undefined && Object.keys(sysctls).length > 0) {
    throw precondition("linux.sysctls: pod sysctls are not supported");
  }
  // CONTAINER for the network or IPC of a whole pod means the same as POD: the pod's own.
  const holds = {
    network: modes.network !== "NODE",
    ipc: modes.ipc !== "NODE",
    uts: modes.network !== "NODE",
  };

  let hostname = text(config, "hostname", "config.hostname", 64);
  if (holds.uts) {
    if (hostname === "") hostname = metadata.name;
    const problem = hostnameProblem(hostname);
    if (problem !== undefined) throw invalid(`config.hostname ${JSON.stringify(hostname)}: ${problem}`);
  } else {
    hostname = "";
  }

  const logDirectory = text(config, "log_directory", "config.log_directory", LIMITS.logDirectoryBytes);
  const logProblem = logDirectoryProblem(logDirectory);
  if (logProblem !== undefined) throw invalid(`config.log_directory: ${logProblem}`);

  const dnsConfig = field(config, "dns_config") as Message;
  let dns: DnsSpec | undefined;
  if (dnsConfig !== null && dnsConfig !== undefined) {
    const servers = list(dnsConfig, "servers", "dns_config.servers", LIMITS.dnsServers).map((s, i) => {
      if (typeof s !== "string" || isIP(s) === 0)
        throw invalid(`dns_config.servers[${i}]: not an IP address`);
      return s;
    });
    const searches = list(dnsConfig, "searches", "dns_config.searches", LIMITS.dnsSearches).map((s, i) => {
      const problem = typeof s === "string" ? domainProblem(s) : "not a string";
      if (problem !== undefined) throw invalid(`dns_config.searches[${i}]: ${problem}`);
      return s as string;
    });
    if (bytes(searches.join(" ")) > LIMITS.dnsSearchBytes) {
      throw invalid(`dns_config.searches: more than ${LIMITS.dnsSearchBytes} bytes together`);
    }
    const opts = list(dnsConfig, "options", "dns_config.options", LIMITS.dnsOptions).map((s, i) => {
      if (typeof s !== "string" || !DNS_OPTION.test(s))
        throw invalid(`dns_config.options[${i}]: not a resolver option`);
      return s;
    });
    if (servers.length + searches.length + opts.length > 0) dns = { servers, searches, options: opts };
  }

  const portMappings: PortMappingSpec[] = [];
  const seen = new Set<string>();
  list(config, "port_mappings", "config.port_mappings", LIMITS.portMappings).forEach((m, i) => {
    const mapping = m as Message;
    const what = `config.port_mappings[${i}]`;
    const hostPort = Number(field(mapping, "host_port") ?? 0);
    const containerPort = Number(field(mapping, "container_port") ?? 0);
    // The kubelet lists every declared container port; only those with a host port are mappings.
    if (hostPort === 0) return;
    const protocol = field(mapping, "protocol") ?? "TCP";
    if (protocol !== "TCP") {
      throw precondition(`${what}: protocol ${JSON.stringify(protocol)} is not supported (TCP only)`);
    }
    if (!Number.isInteger(hostPort) || hostPort < 1 || hostPort > 65535)
      throw invalid(`${what}.host_port: not a port`);
    if (!Number.isInteger(containerPort) || containerPort < 1 || containerPort > 65535) {
      throw invalid(`${what}.container_port: not a port`);
    }
    const hostIp = text(mapping, "host_ip", `${what}.host_ip`, 64);
    if (hostIp !== "" && isIP(hostIp) === 0) throw invalid(`${what}.host_ip: not an IP address`);
    if (!holds.network) throw precondition(`${what}: port mappings need the pod's own network (not NODE)`);
    const key = `${hostIp}:${hostPort}`;
    if (seen.has(key)) throw invalid(`${what}: host port ${hostPort} is mapped twice`);
    seen.add(key);
    portMappings.push({ protocol: "TCP", containerPort, hostPort, hostIp });
  });

  const labels = stringMap(config, "labels", "config.labels", {
    count: LIMITS.labels,
    keyBytes: LIMITS.labelKeyBytes,
    valueBytes: LIMITS.labelValueBytes,
  });
  const annotations = stringMap(config, "annotations", "config.annotations", {
    count: LIMITS.annotations,
    keyBytes: LIMITS.labelKeyBytes,
    valueBytes: LIMITS.annotationBytes,
    totalBytes: LIMITS.annotationBytes,
  });
  const runtimeHandler = text(request, "runtime_handler", "runtime_handler", LIMITS.runtimeHandlerBytes);

  return {
    metadata,
    hostname,
    logDirectory,
    dns,
    portMappings,
    labels,
    annotations,
    holds,
    modes,
    resources: podResources(linux),
    runtimeHandler,
  };
}
