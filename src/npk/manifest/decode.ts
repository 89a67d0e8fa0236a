import { NORTHSTAR_MANIFEST_FIELDS } from "../../protocol/manifest-fields.js";
import semver from "semver";
import { IssueList, joinPath } from "./errors.js";
import { isRawObject, type Raw, type RawObject, Reader, setIfDefined, toJson } from "./reader.js";
import { parseByteSize } from "../../common/units.js";
import { MAX_ENV_VARS } from "./validate.js";
import { decodeCgroups } from "./decode-cgroups.js";
import { decodePower, decodeRestart } from "./decode-extensions.js";
import {
  decodeConsole,
  decodeIo,
  decodeRlimits,
  decodeSched,
  decodeSeccomp,
  decodeSelinux,
  decodeSockets,
} from "./decode-sections.js";
import {
  CAPABILITIES,
  type Capability,
  type JsonValue,
  type Manifest,
  MOUNT_OPTIONS,
  type Mount,
  type MountOption,
  type Network,
} from "./types.js";

const U16_MAX = 65_535;

const TOP_LEVEL_FIELDS = [
  ...NORTHSTAR_MANIFEST_FIELDS,
  // Skiff extensions
  "restart",
  "stop_timeout",
  "prepare",
  "group",
  "power",
] as const;

/**
 * Turns a parsed document into a Manifest, checking shapes, types, enum values and unknown fields
 * (what Northstar's serde deserialization rejects). Semantic rules live in validate.ts.
 * Throws ManifestError listing every problem.
 */
export function decodeManifest(document: unknown): Manifest {
  const issues = new IssueList();
  const read = new Reader(issues);
  const raw = read.object(document as Raw, "", TOP_LEVEL_FIELDS, ["name", "version", "uid", "gid"]);
  if (raw === undefined) issues.throwIfAny();
  const m = decodeFields(read, raw!);
  issues.throwIfAny();
  return m;
}

function decodeFields(read: Reader, raw: RawObject): Manifest {
  const m = {} as Manifest;
  const has = (key: string) => key in raw && raw[key] !== null;
  m.name = read.string(raw.name ?? null, "name") ?? "";
  m.version = decodeVersion(read, raw.version ?? null);
  if (has("console")) setIfDefined(m, "console", decodeConsole(read, raw.console!));
  if (has("init")) setIfDefined(m, "init", read.string(raw.init!, "init"));
  if (has("args")) setIfDefined(m, "args", decodeStringList(read, raw.args!, "args"));
  if (has("env")) setIfDefined(m, "env", read.stringMap(raw.env!, "env", MAX_ENV_VARS));
  m.uid = read.integer(raw.uid ?? null, "uid", 0, U16_MAX) ?? 0;
  m.gid = read.integer(raw.gid ?? null, "gid", 0, U16_MAX) ?? 0;
  if (has("sched")) setIfDefined(m, "sched", decodeSched(read, raw.sched!));
  if (has("mounts")) setIfDefined(m, "mounts", decodeMounts(read, raw.mounts!));
  if (has("autostart"))
    setIfDefined(m, "autostart", read.oneOf(raw.autostart!, "autostart", ["relaxed", "critical"]));
  if (has("cgroups")) setIfDefined(m, "cgroups", decodeCgroups(read, raw.cgroups!));
  if (has("network")) setIfDefined(m, "network", decodeNetwork(read, raw.network!));
  if (has("seccomp")) setIfDefined(m, "seccomp", decodeSeccomp(read, raw.seccomp!));
  if (has("selinux")) setIfDefined(m, "selinux", decodeSelinux(read, raw.selinux!));
  if (has("capabilities")) setIfDefined(m, "capabilities", decodeCapabilities(read, raw.capabilities!));
  if (has("suppl_groups")) {
    setIfDefined(m, "suppl_groups", decodeStringList(read, raw.suppl_groups!, "suppl_groups", true));
  }
  if (has("rlimits")) setIfDefined(m, "rlimits", decodeRlimits(read, raw.rlimits!));
  if (has("sockets")) setIfDefined(m, "sockets", decodeSockets(read, raw.sockets!));
  if (has("io")) setIfDefined(m, "io", decodeIo(read, raw.io!));
  if (has("custom")) m.custom = toJson(raw.custom!) as JsonValue;
  if (has("restart")) setIfDefined(m, "restart", decodeRestart(read, raw.restart!));
  if (has("stop_timeout")) setIfDefined(m, "stop_timeout", read.string(raw.stop_timeout!, "stop_timeout"));
  if (has("prepare")) setIfDefined(m, "prepare", read.boolean(raw.prepare!, "prepare"));
  if (has("group")) setIfDefined(m, "group", read.string(raw.group!, "group"));
  if (has("power")) setIfDefined(m, "power", decodePower(read, raw.power!));
  dropEmptyCollections(m);
  return m;
}

/** Northstar omits empty collections when serializing; so do we. */
function dropEmptyCollections(m: Manifest): void {
  for (const key of ["args", "capabilities", "suppl_groups"] as const) {
    if (m[key]?.length === 0) delete m[key];
  }
  for (const key of ["env", "mounts", "rlimits", "sockets"] as const) {
    const value = m[key];
    if (value !== undefined && Object.keys(value).length === 0) delete m[key];
  }
}

/** Northstar parses the version as semver and serializes only `major.minor.patch`. */
function decodeVersion(read: Reader, value: Raw): string {
  const text = read.string(value, "version");
  if (text === undefined) return "";
  const parsed = semver.parse(text);
  if (parsed === null) {
    read.issues.add("version", `invalid semantic version "${text}"`);
    return text;
  }
  return `${parsed.major}.${parsed.minor}.${parsed.patch}`;
}

function decodeStringList(read: Reader, value: Raw, path: string, unique = false): string[] | undefined {
  const items = read.array(value, path);
  if (items === undefined) return undefined;
  const out: string[] = [];
  items.forEach((item, i) => {
    const text = read.string(item, joinPath(path, i));
    if (text === undefined) return;
    if (unique && out.includes(text)) read.issues.add(joinPath(path, i), `duplicate entry "${text}"`);
    else out.push(text);
  });
  return out;
}

function decodeCapabilities(read: Reader, value: Raw): Capability[] | undefined {
  const items = read.array(value, "capabilities");
  if (items === undefined) return undefined;
  const out: Capability[] = [];
  items.forEach((item, i) => {
    const cap = read.oneOf(item, joinPath("capabilities", i), CAPABILITIES);
    if (cap === undefined) return;
    if (out.includes(cap)) read.issues.add(joinPath("capabilities", i), `duplicate capability ${cap}`);
    else out.push(cap);
  });
  return out;
}

function decodeNetwork(read: Reader, value: Raw): Network | undefined {
  const v = read.variant(value, "network");
  if (v === undefined) return undefined;
  if (v.tag === "host" && v.content === undefined) return "host";
  if (v.tag === "namespace" && v.content !== undefined) {
    const name = read.string(v.content, "network.namespace");
    return name === undefined ? undefined : { namespace: name };
  }
  read.issues.add("network", `expected "host" or !namespace <name>, got variant "${v.tag}"`);
  return undefined;
}

const MOUNT_FIELDS: Record<Mount["type"], readonly string[]> = {
  bind: ["type", "host", "options"],
  resource: ["type", "name", "version", "dir", "options"],
  tmpfs: ["type", "size"],
  dev: ["type"],
  persist: ["type"],
  proc: ["type"],
  sockets: ["type"],
  sysfs: ["type"],
};
const MOUNT_REQUIRED: Partial<Record<Mount["type"], readonly string[]>> = {
  bind: ["host"],
  resource: ["name", "version", "dir"],
  tmpfs: ["size"],
};
const MOUNT_TYPES = Object.keys(MOUNT_FIELDS) as Mount["type"][];

function decodeMounts(read: Reader, value: Raw): Record<string, Mount> | undefined {
  const map = read.map(value, "mounts");
  if (map === undefined) return undefined;
  const out: Record<string, Mount> = {};
  for (const [target, item] of Object.entries(map)) {
    setIfDefined(out, target, decodeMount(read, item, joinPath("mounts", target)));
  }
  return out;
}

/**
 * Northstar tags mounts with a `type` field. The tagged YAML form (`/data: !persist`,
 * `/lib: !bind { host: /lib }`) is accepted as well and means the same.
 */
function untagMount(value: Raw): Raw {
  if (typeof value === "string" && (MOUNT_TYPES as string[]).includes(value)) return { type: value };
  if (isRawObject(value) && !("type" in value)) {
    const keys = Object.keys(value);
    const content = value[keys[0]!];
    if (keys.length === 1 && (MOUNT_TYPES as string[]).includes(keys[0]!)) {
      if (content === null) return { type: keys[0]! };
      if (content !== undefined && isRawObject(content)) return { type: keys[0]!, ...content };
    }
  }
  return value;
}

function decodeMount(read: Reader, value: Raw, path: string): Mount | undefined {
  const typed = read.map(untagMount(value), path);
  if (typed === undefined) return undefined;
  const type = read.oneOf(typed.type ?? null, joinPath(path, "type"), MOUNT_TYPES);
  if (type === undefined) return undefined;
  const fields = read.object(typed, path, MOUNT_FIELDS[type], MOUNT_REQUIRED[type]);
  if (fields === undefined || (MOUNT_REQUIRED[type] ?? []).some((key) => !(key in fields))) return undefined;
  const at = (key: string) => joinPath(path, key);
  switch (type) {
    case "bind": {
      const host = read.string(fields.host ?? null, at("host"));
      const options = decodeMountOptions(read, fields.options, at("options"));
      if (host === undefined || options === null) return undefined;
      return options === undefined ? { type, host } : { type, host, options };
    }
    case "resource": {
      const name = read.string(fields.name ?? null, at("name"));
      const version = read.string(fields.version ?? null, at("version"));
      const dir = read.string(fields.dir ?? null, at("dir"));
      const options = decodeMountOptions(read, fields.options, at("options"));
      if (name === undefined || version === undefined || dir === undefined || options === null)
        return undefined;
      return options === undefined ? { type, name, version, dir } : { type, name, version, dir, options };
    }
    case "tmpfs": {
      const size = decodeSize(read, fields.size ?? null, at("size"));
      return size === undefined ? undefined : { type, size };
    }
    default:
      return { type };
  }
}

/** Returns the normalized option string, undefined when there are none, null when invalid. */
function decodeMountOptions(read: Reader, value: Raw | undefined, path: string): string | undefined | null {
  if (value === undefined || value === null) return undefined;
  const text = read.string(value, path);
  if (text === undefined) return null;
  const options: MountOption[] = [];
  for (const part of text.split(",").map((p) => p.trim())) {
    if (text.trim() === "") break;
    if (!(MOUNT_OPTIONS as readonly string[]).includes(part)) {
      read.issues.add(path, `invalid mount option "${part}" (expected ${MOUNT_OPTIONS.join(", ")})`);
      return null;
    }
    if (!options.includes(part as MountOption)) options.push(part as MountOption);
  }
  return options.length === 0 ? undefined : options.join(",");
}

function decodeSize(read: Reader, value: Raw, path: string): number | undefined {
  if (typeof value === "string") {
    try {
      return parseByteSize(value, "decimal");
    } catch (error) {
      read.issues.add(path, (error as Error).message);
      return undefined;
    }
  }
  return read.integer(value, path, 0);
}
