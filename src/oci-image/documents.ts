// The JSON documents of an image (index, manifest, config) in their OCI and Docker v2 forms,
// checked field by field. Only the fields Skiff uses are kept; unknown fields are ignored as the
// OCI image spec requires. Size limits apply before parsing (see MAX_*).
import { OciImageError } from "./errors.js";
import { parseDigest, type Digest } from "./digest.js";
import { messageOf } from "../common/errors.js";

export const MEDIA_TYPES = {
  ociIndex: "application/vnd.oci.image.index.v1+json",
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  ociConfig: "application/vnd.oci.image.config.v1+json",
  dockerManifestList: "application/vnd.docker.distribution.manifest.list.v2+json",
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  dockerConfig: "application/vnd.docker.container.image.v1+json",
} as const;

/** Accept header for registry manifest requests: every form this reader understands. */
export const MANIFEST_ACCEPT = [
  MEDIA_TYPES.ociIndex,
  MEDIA_TYPES.ociManifest,
  MEDIA_TYPES.dockerManifestList,
  MEDIA_TYPES.dockerManifest,
].join(", ");

/** Index and manifest documents are at most this large (the distribution spec's 4 MiB). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
/** Image configs carry history; allow more, still bounded. */
export const MAX_CONFIG_BYTES = 8 * 1024 * 1024;
const MAX_LAYERS = 256;
const MAX_INDEX_ENTRIES = 1024;
const MAX_ENV_ENTRIES = 4096;

export type LayerCompression = "none" | "gzip" | "zstd";

const LAYER_MEDIA_TYPES: Record<string, LayerCompression> = {
  "application/vnd.oci.image.layer.v1.tar": "none",
  "application/vnd.oci.image.layer.v1.tar+gzip": "gzip",
  "application/vnd.oci.image.layer.v1.tar+zstd": "zstd",
  "application/vnd.oci.image.layer.nondistributable.v1.tar": "none",
  "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip": "gzip",
  "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd": "zstd",
  "application/vnd.docker.image.rootfs.diff.tar.gzip": "gzip",
  "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip": "gzip",
};

/** The compression a layer media type implies; throws for media types that are not layers. */
export function layerCompression(mediaType: string, what: string): LayerCompression {
  const compression = LAYER_MEDIA_TYPES[mediaType];
  if (compression === undefined)
    throw new OciImageError("format", `${what}: unsupported layer media type "${mediaType}"`);
  return compression;
}

export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
}

export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  annotations: Record<string, string>;
  platform?: Platform;
}

export type ManifestDocument =
  | { kind: "index"; manifests: Descriptor[]; annotations: Record<string, string> }
  | { kind: "manifest"; config: Descriptor; layers: Descriptor[]; annotations: Record<string, string> };

/** The parts of an image config that become the NPK manifest. */
export interface ContainerConfig {
  Entrypoint?: string[];
  Cmd?: string[];
  Env?: string[];
  User?: string;
  WorkingDir?: string;
  Volumes?: string[];
  ExposedPorts?: string[];
  Labels: Record<string, string>;
}

export interface ImageConfig {
  architecture: string;
  os: string;
  variant?: string;
  config: ContainerConfig;
  /** rootfs.diff_ids: the digest of each layer's uncompressed tar, in order. */
  diffIds: Digest[];
}

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function parseJson(bytes: Buffer, what: string, max: number): Json {
  if (bytes.length > max) throw new OciImageError("size", `${what}: ${bytes.length} bytes, more than ${max}`);
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString("utf8"));
  } catch (e) {
    throw new OciImageError("format", `${what}: not JSON (${messageOf(e)})`);
  }
  if (!isObject(value)) throw new OciImageError("format", `${what}: not a JSON object`);
  return value;
}

function fail(what: string, field: string, reason: string): never {
  throw new OciImageError("format", `${what}: ${field} ${reason}`);
}

function optionalString(obj: Json, key: string, what: string): string | undefined {
  const value = obj[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string") fail(what, key, "must be a string");
  return value;
}

function optionalStringList(obj: Json, key: string, what: string, max: number): string[] | undefined {
  const value = obj[key];
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value) || value.some((item) => typeof item !== "string")) {
    fail(what, key, "must be a list of strings");
  }
  if (value.length > max) fail(what, key, `has more than ${max} entries`);
  return value as string[];
}

function stringMap(value: unknown, what: string, field: string): Record<string, string> {
  if (value === undefined || value === null) return {};
  if (!isObject(value)) fail(what, field, "must be an object");
  const out: Record<string, string> = {};
  for (const [key, item] of Object.entries(value)) {
    if (typeof item !== "string") fail(what, `${field}.${key}`, "must be a string");
    out[key] = item;
  }
  return out;
}

/** Keys of a JSON object used as a set (`{"/data": {}}`), as in Volumes and ExposedPorts. */
function keySet(obj: Json, key: string, what: string): string[] | undefined {
  const value = obj[key];
  if (value === undefined || value === null) return undefined;
  if (!isObject(value)) fail(what, key, "must be an object");
  return Object.keys(value);
}

function parsePlatform(value: unknown, what: string): Platform | undefined {
  if (value === undefined) return undefined;
  if (!isObject(value)) fail(what, "platform", "must be an object");
  const architecture = optionalString(value, "architecture", what);
  const os = optionalString(value, "os", what);
  if (architecture === undefined || os === undefined) fail(what, "platform", "needs architecture and os");
  const variant = optionalString(value, "variant", what);
  return { architecture, os, ...(variant === undefined ? {} : { variant }) };
}

export function parseDescriptor(value: unknown, what: string): Descriptor {
  if (!isObject(value)) fail(what, "descriptor", "must be an object");
  const mediaType = optionalString(value, "mediaType", what);
  if (mediaType === undefined) fail(what, "mediaType", "is missing");
  const size = value.size;
  if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0)
    fail(what, "size", "must be a non-negative integer");
  const platform = parsePlatform(value.platform, what);
  return {
    mediaType,
    digest: parseDigest(value.digest, `${what}: digest`),
    size,
    annotations: stringMap(value.annotations, what, "annotations"),
    ...(platform === undefined ? {} : { platform }),
  };
}

/**
 * Parses an index or an image manifest. The kind comes from the document's mediaType, else from
 * `contentType` (a registry's Content-Type), else from its shape.
 */
export function parseManifestDocument(bytes: Buffer, what: string, contentType?: string): ManifestDocument {
  const doc = parseJson(bytes, what, MAX_MANIFEST_BYTES);
  const mediaType = optionalString(doc, "mediaType", what) ?? contentType?.split(";")[0]?.trim();
  const isIndex =
    mediaType === MEDIA_TYPES.ociIndex ||
    mediaType === MEDIA_TYPES.dockerManifestList ||
    ((mediaType === undefined || mediaType === "application/json") && Array.isArray(doc.manifests));
  const isManifest =
    mediaType === MEDIA_TYPES.ociManifest ||
    mediaType === MEDIA_TYPES.dockerManifest ||
    ((mediaType === undefined || mediaType === "application/json") && Array.isArray(doc.layers));
  if (doc.schemaVersion !== 2) {
    fail(
      what,
      "schemaVersion",
      `is ${JSON.stringify(doc.schemaVersion)}; only schema 2 images are supported (Docker schema 1 is obsolete)`,
    );
  }
  const annotations = stringMap(doc.annotations, what, "annotations");
  if (isIndex) {
    if (!Array.isArray(doc.manifests)) fail(what, "manifests", "must be a list");
    if (doc.manifests.length > MAX_INDEX_ENTRIES)
      fail(what, "manifests", `has more than ${MAX_INDEX_ENTRIES} entries`);
    const manifests = doc.manifests.map((d, i) => parseDescriptor(d, `${what}: manifests[${i}]`));
    return { kind: "index", manifests, annotations };
  }
  if (isManifest) {
    if (!Array.isArray(doc.layers)) fail(what, "layers", "must be a list");
    if (doc.layers.length > MAX_LAYERS) fail(what, "layers", `has more than ${MAX_LAYERS} entries`);
    const config = parseDescriptor(doc.config, `${what}: config`);
    const layers = doc.layers.map((d, i) => parseDescriptor(d, `${what}: layers[${i}]`));
    return { kind: "manifest", config, layers, annotations };
  }
  throw new OciImageError("format", `${what}: unsupported media type "${mediaType ?? "(none)"}"`);
}

/** Parses an image config (OCI or Docker; the two agree on every field used here). */
export function parseImageConfig(bytes: Buffer, what: string): ImageConfig {
  const doc = parseJson(bytes, what, MAX_CONFIG_BYTES);
  const architecture = optionalString(doc, "architecture", what);
  const os = optionalString(doc, "os", what);
  if (architecture === undefined || os === undefined) fail(what, "architecture/os", "are required");
  const variant = optionalString(doc, "variant", what);
  const rootfs = doc.rootfs;
  if (!isObject(rootfs) || rootfs.type !== "layers" || !Array.isArray(rootfs.diff_ids)) {
    fail(what, "rootfs", 'must be { type: "layers", diff_ids: [...] }');
  }
  if (rootfs.diff_ids.length > MAX_LAYERS)
    fail(what, "rootfs.diff_ids", `has more than ${MAX_LAYERS} entries`);
  const diffIds = rootfs.diff_ids.map((d, i) => parseDigest(d, `${what}: rootfs.diff_ids[${i}]`));
  const raw = doc.config;
  if (raw !== undefined && raw !== null && !isObject(raw)) fail(what, "config", "must be an object");
  const c: Json = raw ?? {};
  const field = (key: string) => optionalString(c, key, `${what}: config`);
  const list = (key: string) => optionalStringList(c, key, `${what}: config`, MAX_ENV_ENTRIES);
  const config: ContainerConfig = { Labels: stringMap(c.Labels, what, "config.Labels") };
  const entrypoint = list("Entrypoint");
  const cmd = list("Cmd");
  const env = list("Env");
  const user = field("User");
  const workingDir = field("WorkingDir");
  const volumes = keySet(c, "Volumes", what);
  const ports = keySet(c, "ExposedPorts", what);
  if (entrypoint !== undefined) config.Entrypoint = entrypoint;
  if (cmd !== undefined) config.Cmd = cmd;
  if (env !== undefined) config.Env = env;
  if (user !== undefined) config.User = user;
  if (workingDir !== undefined) config.WorkingDir = workingDir;
  if (volumes !== undefined) config.Volumes = volumes;
  if (ports !== undefined) config.ExposedPorts = ports;
  return { architecture, os, ...(variant === undefined ? {} : { variant }), config, diffIds };
}
