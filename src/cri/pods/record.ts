/**
 * A pod record as stored in `pod.json`: written by the store, read back at start. Our own file,
 * but read as input all the same (a disk error or a hand edit must not become a crash later):
 * `parseRecord` checks every field's shape and refuses what does not fit. Pure.
 */
import type { PodSandboxRef } from "../sandbox.js";
import { parseIpv4 } from "../../common/ipv4.js";
import type { PodState } from "./filter.js";
import {
  hostnameProblem,
  logDirectoryProblem,
  type DnsSpec,
  type NamespaceModeName,
  type PodResources,
  type PodSpec,
  type PortMappingSpec,
} from "./spec.js";

export const RECORD_VERSION = 1;
/** Larger than any record the limits of spec.ts allow (annotations are 256 KiB at most). */
export const MAX_RECORD_BYTES = 1024 * 1024;

export interface PodRecord {
  id: string;
  metadata: PodSandboxRef["metadata"];
  /** Nanoseconds since the epoch, as a decimal string (CRI's int64). */
  createdAt: string;
  state: PodState;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  runtimeHandler: string;
  /** "" when the pod is in the node's UTS namespace. */
  hostname: string;
  logDirectory: string;
  dns: DnsSpec | undefined;
  portMappings: PortMappingSpec[];
  holds: PodSpec["holds"];
  modes: { network: NamespaceModeName; pid: NamespaceModeName; ipc: NamespaceModeName };
  resources: PodResources;
  /** The pod's address while its network is attached. */
  ip: string | undefined;
}

export function serializeRecord(record: PodRecord): string {
  return JSON.stringify({ version: RECORD_VERSION, ...record });
}

class RecordError extends Error {}

type Json = Record<string, unknown>;

function object(value: unknown, what: string): Json {
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw new RecordError(`${what}: not an object`);
  return value as Json;
}

function str(value: unknown, what: string): string {
  if (typeof value !== "string") throw new RecordError(`${what}: not a string`);
  return value;
}

function int(value: unknown, what: string): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    throw new RecordError(`${what}: not a non-negative integer`);
  }
  return value;
}

function strings(value: unknown, what: string): string[] {
  if (!Array.isArray(value)) throw new RecordError(`${what}: not a list`);
  return value.map((v, i) => str(v, `${what}[${i}]`));
}

function stringMap(value: unknown, what: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, v] of Object.entries(object(value, what))) {
    Object.defineProperty(out, key, {
      value: str(v, `${what}.${key}`),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}

const MODES = new Set(["POD", "CONTAINER", "NODE", "TARGET"]);
function mode(value: unknown, what: string): NamespaceModeName {
  if (typeof value !== "string" || !MODES.has(value)) throw new RecordError(`${what}: not a namespace mode`);
  return value as NamespaceModeName;
}

function bool(value: unknown, what: string): boolean {
  if (typeof value !== "boolean") throw new RecordError(`${what}: not a boolean`);
  return value;
}

/** The record in `text`, or the reason it is not one (for pod `id`). */
export function parseRecord(text: string, id: string): PodRecord | string {
  try {
    if (Buffer.byteLength(text) > MAX_RECORD_BYTES)
      throw new RecordError(`larger than ${MAX_RECORD_BYTES} bytes`);
    const json = object(JSON.parse(text), "record");
    if (json.version !== RECORD_VERSION)
      throw new RecordError(`version ${String(json.version)}, expected ${RECORD_VERSION}`);
    if (json.id !== id) throw new RecordError("id: not the directory's");
    const meta = object(json.metadata, "metadata");
    const createdAt = str(json.createdAt, "createdAt");
    if (!/^\d{1,20}$/.test(createdAt)) throw new RecordError("createdAt: not a timestamp");
    const state = json.state;
    if (state !== "ready" && state !== "notready") throw new RecordError("state: neither ready nor notready");
    const hostname = str(json.hostname, "hostname");
    if (hostname !== "" && hostnameProblem(hostname) !== undefined)
      throw new RecordError("hostname: not a hostname");
    const logDirectory = str(json.logDirectory, "logDirectory");
    const logProblem = logDirectoryProblem(logDirectory);
    if (logProblem !== undefined) throw new RecordError(`logDirectory: ${logProblem}`);
    const holds = object(json.holds, "holds");
    const modes = object(json.modes, "modes");
    const dnsJson = json.dns === undefined ? undefined : object(json.dns, "dns");
    const resources = object(json.resources ?? {}, "resources");
    for (const [key, v] of Object.entries(resources)) {
      if (typeof v !== "number" && typeof v !== "string")
        throw new RecordError(`resources.${key}: not a value`);
    }
    const ip = json.ip === undefined ? undefined : str(json.ip, "ip");
    if (ip !== undefined && parseIpv4(ip) === undefined) throw new RecordError("ip: not an IPv4 address");
    if (!Array.isArray(json.portMappings)) throw new RecordError("portMappings: not a list");
    return {
      id,
      metadata: {
        name: str(meta.name, "metadata.name"),
        namespace: str(meta.namespace, "metadata.namespace"),
        uid: str(meta.uid, "metadata.uid"),
        attempt: int(meta.attempt, "metadata.attempt"),
      },
      createdAt,
      state,
      labels: stringMap(json.labels, "labels"),
      annotations: stringMap(json.annotations, "annotations"),
      runtimeHandler: str(json.runtimeHandler, "runtimeHandler"),
      hostname,
      logDirectory,
      dns:
        dnsJson === undefined
          ? undefined
          : {
              servers: strings(dnsJson.servers, "dns.servers"),
              searches: strings(dnsJson.searches, "dns.searches"),
              options: strings(dnsJson.options, "dns.options"),
            },
      portMappings: json.portMappings.map((m, i) => {
        const mapping = object(m, `portMappings[${i}]`);
        if (mapping.protocol !== "TCP") throw new RecordError(`portMappings[${i}].protocol: not TCP`);
        return {
          protocol: "TCP" as const,
          containerPort: int(mapping.containerPort, `portMappings[${i}].containerPort`),
          hostPort: int(mapping.hostPort, `portMappings[${i}].hostPort`),
          hostIp: str(mapping.hostIp, `portMappings[${i}].hostIp`),
        };
      }),
      holds: {
        network: bool(holds.network, "holds.network"),
        ipc: bool(holds.ipc, "holds.ipc"),
        uts: bool(holds.uts, "holds.uts"),
      },
      modes: {
        network: mode(modes.network, "modes.network"),
        pid: mode(modes.pid, "modes.pid"),
        ipc: mode(modes.ipc, "modes.ipc"),
      },
      resources: resources as PodResources,
      ip,
    };
  } catch (e) {
    if (e instanceof RecordError || e instanceof SyntaxError) return e.message;
    throw e;
  }
}
