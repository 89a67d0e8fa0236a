// `docker save` / `skopeo copy … docker-archive:` tars: manifest.json lists, per image, the config
// file, the repository tags and the layer tars. Layers carry no compressed digest here; each is
// verified against the config's rootfs.diff_ids (the digest of the uncompressed tar), and the
// config against its file name, which docker and skopeo make its sha256.
import { createHash } from "node:crypto";
import type { ImageLayer } from "./apply.js";
import { sha256Digest } from "./digest.js";
import {
  MAX_CONFIG_BYTES,
  MAX_MANIFEST_BYTES,
  parseImageConfig,
  type LayerCompression,
  type Platform,
} from "./documents.js";
import { OciImageError } from "./errors.js";
import { readMember, type FileSet } from "./files.js";
import { checkConfigPlatform } from "./platform.js";
import type { ResolvedImage } from "./resolve.js";
import { messageOf } from "../common/errors.js";

interface ArchiveEntry {
  config: string;
  repoTags: string[];
  layers: string[];
}

function parseArchiveManifest(bytes: Buffer, what: string): ArchiveEntry[] {
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString("utf8"));
  } catch (e) {
    throw new OciImageError("format", `${what}: manifest.json is not JSON (${messageOf(e)})`);
  }
  if (!Array.isArray(doc) || doc.length === 0)
    throw new OciImageError("format", `${what}: manifest.json must be a non-empty list`);
  const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every((s) => typeof s === "string");
  return doc.map((item: unknown, i) => {
    const o = (typeof item === "object" && item !== null ? item : {}) as Record<string, unknown>;
    const repoTags = o.RepoTags ?? [];
    if (typeof o.Config !== "string" || !isStrings(o.Layers) || !isStrings(repoTags)) {
      throw new OciImageError("format", `${what}: manifest.json[${i}] needs Config, Layers and RepoTags`);
    }
    return { config: o.Config, repoTags, layers: o.Layers };
  });
}

/** `name:tag` → [name, tag]; a name with a registry port keeps it (`host:5000/a:b`). */
function splitRepoTag(repoTag: string): [string, string | undefined] {
  const colon = repoTag.lastIndexOf(":");
  if (colon > repoTag.lastIndexOf("/")) return [repoTag.slice(0, colon), repoTag.slice(colon + 1)];
  return [repoTag, undefined];
}

async function sniffCompression(files: FileSet, name: string, what: string): Promise<LayerCompression> {
  const stream = await files.open(name);
  const head: Buffer[] = [];
  let length = 0;
  for await (const chunk of stream) {
    head.push(chunk as Buffer);
    length += (chunk as Buffer).length;
    if (length >= 4) break;
  }
  stream.destroy();
  const magic = Buffer.concat(head);
  if (magic[0] === 0x1f && magic[1] === 0x8b) return "gzip";
  if (magic.readUInt32LE(0) === 0xfd2fb528) {
    throw new OciImageError("format", `${what}: zstd-compressed layers are not supported`);
  }
  return "none";
}

export async function resolveDockerArchive(
  files: FileSet,
  tag: string | undefined,
  target: Platform,
  maxBytes: number,
): Promise<ResolvedImage> {
  const what = files.what;
  const entries = parseArchiveManifest(await readMember(files, "manifest.json", MAX_MANIFEST_BYTES), what);
  let entry: ArchiveEntry | undefined;
  if (tag !== undefined) {
    entry = entries.find((e) => e.repoTags.some((t) => t === tag || splitRepoTag(t)[1] === tag));
    if (entry === undefined) {
      const all = entries.flatMap((e) => e.repoTags);
      throw new OciImageError(
        "source",
        `${what}: no image tagged "${tag}" (tags: ${all.length === 0 ? "none" : all.join(", ")})`,
      );
    }
  } else if (entries.length === 1) {
    entry = entries[0]!;
  } else {
    throw new OciImageError("usage", `${what}: holds ${entries.length} images; name one with :TAG`);
  }
  const configBytes = await readMember(files, entry.config, MAX_CONFIG_BYTES);
  const hexName = /(?:^|\/)([a-f0-9]{64})(?:\.json)?$/.exec(entry.config);
  if (hexName !== null) {
    const actual = createHash("sha256").update(configBytes).digest("hex");
    if (actual !== hexName[1]) {
      throw new OciImageError(
        "digest",
        `${what}: config ${entry.config}: digest mismatch: content is sha256:${actual}`,
      );
    }
  }
  const config = parseImageConfig(configBytes, `${what}: config`);
  checkConfigPlatform(config, target, what);
  if (config.diffIds.length !== entry.layers.length) {
    throw new OciImageError(
      "format",
      `${what}: manifest.json lists ${entry.layers.length} layers but the config's rootfs lists ${config.diffIds.length}`,
    );
  }
  let blobBytes = configBytes.length;
  const layers: ImageLayer[] = [];
  for (const [i, name] of entry.layers.entries()) {
    const layerWhat = `${what} layer ${i + 1} of ${entry.layers.length} (${name})`;
    const size = await files.size(name);
    if (size === undefined) throw new OciImageError("source", `${what}: layer ${name} is missing`);
    blobBytes += size;
    if (blobBytes > maxBytes) {
      throw new OciImageError(
        "size",
        `${what}: the image is more than --max-image-size ${maxBytes} bytes; refused`,
      );
    }
    layers.push({
      what: layerWhat,
      size,
      compression: await sniffCompression(files, name, layerWhat),
      open: () => files.open(name),
    });
  }
  const [repository, repoTag] =
    entry.repoTags[0] === undefined ? [undefined, undefined] : splitRepoTag(entry.repoTags[0]);
  const chosenTag = tag ?? repoTag;
  return {
    config,
    layers,
    annotations: {},
    ...(chosenTag === undefined ? {} : { tag: chosenTag }),
    ...(repository === undefined ? {} : { repository }),
    blobBytes,
    configDigest: sha256Digest(configBytes),
  };
}
