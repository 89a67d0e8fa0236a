// From a manifest store (an OCI layout or a registry) to a resolved image: the platform's
// manifest, its verified config, and its layers ready to apply.
import type { Readable } from "node:stream";
import type { ImageLayer } from "./apply.js";
import { digestHex, readVerified, sha256Digest, type Digest } from "./digest.js";
import {
  MAX_CONFIG_BYTES,
  MAX_MANIFEST_BYTES,
  layerCompression,
  parseImageConfig,
  parseManifestDocument,
  type Descriptor,
  type ImageConfig,
  type ManifestDocument,
  type Platform,
} from "./documents.js";
import { OciImageError } from "./errors.js";
import { readMember, type FileSet } from "./files.js";
import { checkConfigPlatform, selectPlatformManifest } from "./platform.js";

/** The annotation an OCI layout's index.json uses for tags. */
export const REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name";
const MAX_INDEX_DEPTH = 4;
const MAX_LAYOUT_FILE_BYTES = 4096;

export interface ResolvedImage {
  config: ImageConfig;
  layers: ImageLayer[];
  /** Annotations of the manifest and of the descriptors that led to it (outer ones lose). */
  annotations: Record<string, string>;
  /** The tag the image was found by, if any. */
  tag?: string;
  /** The repository name, when the source knows one (registry, docker-archive RepoTags). */
  repository?: string;
  /** The compressed size of config and layers (what is read from the source). */
  blobBytes: number;
  /** The sha256 of the config as read (the image's ID, as container runtimes name images). */
  configDigest: Digest;
  /**
   * The sha256 of the root document (for a registry: the manifest or index the reference names,
   * i.e. the repository digest); absent for docker-archive, which has none.
   */
  rootDigest?: Digest;
}

export interface RootDocument {
  bytes: Buffer;
  contentType?: string;
  annotations: Record<string, string>;
  tag?: string;
  repository?: string;
}

export interface ManifestStore {
  readonly what: string;
  /** The document the user's reference names (an index or a manifest). */
  root(signal?: AbortSignal): Promise<RootDocument>;
  /** The manifest or index an index entry names, digest-verified. */
  manifest(desc: Descriptor, signal?: AbortSignal): Promise<Buffer>;
  /** A blob's raw content; the caller verifies it. */
  blob(desc: Descriptor, signal?: AbortSignal): Promise<Readable>;
}

/**
 * Walks from the root document through indexes (choosing `target`'s platform) to a manifest,
 * reads and checks its config, and refuses an image larger than `maxBytes` before any layer is read.
 */
export async function resolveFromStore(
  store: ManifestStore,
  target: Platform,
  maxBytes: number,
  signal?: AbortSignal,
): Promise<ResolvedImage> {
  const root = await store.root(signal);
  let doc: ManifestDocument = parseManifestDocument(root.bytes, store.what, root.contentType);
  let annotations = { ...root.annotations };
  let what = store.what;
  for (let depth = 0; doc.kind === "index"; depth++) {
    if (depth >= MAX_INDEX_DEPTH)
      throw new OciImageError("format", `${what}: indexes nested more than ${MAX_INDEX_DEPTH} deep`);
    const chosen = selectPlatformManifest(doc.manifests, target, what);
    what = `${store.what} manifest ${chosen.digest}`;
    const bytes = await store.manifest(chosen, signal);
    annotations = { ...doc.annotations, ...annotations, ...chosen.annotations };
    doc = parseManifestDocument(bytes, what, chosen.mediaType);
  }
  annotations = { ...annotations, ...doc.annotations };
  const blobBytes = doc.config.size + doc.layers.reduce((sum, layer) => sum + layer.size, 0);
  if (blobBytes > maxBytes) {
    throw new OciImageError(
      "size",
      `${store.what}: the image is ${blobBytes} bytes compressed, more than --max-image-size ${maxBytes}; refused before reading its layers`,
    );
  }
  const configBytes = await readVerified(await store.blob(doc.config, signal), {
    what: `${store.what} config ${doc.config.digest}`,
    digest: doc.config.digest,
    size: doc.config.size,
    maxBytes: MAX_CONFIG_BYTES,
  });
  const config = parseImageConfig(configBytes, `${store.what} config`);
  checkConfigPlatform(config, target, store.what);
  if (config.diffIds.length !== doc.layers.length) {
    throw new OciImageError(
      "format",
      `${store.what}: the manifest has ${doc.layers.length} layers but the config's rootfs lists ${config.diffIds.length}`,
    );
  }
  const count = doc.layers.length;
  const layers = doc.layers.map((desc, i): ImageLayer => {
    const layerWhat = `${store.what} layer ${i + 1} of ${count} (${desc.digest})`;
    return {
      what: layerWhat,
      digest: desc.digest,
      size: desc.size,
      compression: layerCompression(desc.mediaType, layerWhat),
      open: (s) => store.blob(desc, s ?? signal),
    };
  });
  return {
    config,
    layers,
    annotations,
    ...(root.tag === undefined ? {} : { tag: root.tag }),
    ...(root.repository === undefined ? {} : { repository: root.repository }),
    blobBytes,
    configDigest: doc.config.digest,
    rootDigest: sha256Digest(root.bytes),
  };
}

/** An OCI image layout (a directory or a staged oci-archive). */
export class LayoutStore implements ManifestStore {
  constructor(
    private readonly files: FileSet,
    private readonly tag: string | undefined,
  ) {}

  get what(): string {
    return this.files.what;
  }

  async root(): Promise<RootDocument> {
    const layoutFile = await this.files.size("oci-layout");
    if (layoutFile === undefined) {
      throw new OciImageError("source", `${this.what}: not an OCI image layout (no oci-layout file)`);
    }
    const layout = (await readMember(this.files, "oci-layout", MAX_LAYOUT_FILE_BYTES)).toString("utf8");
    if (!/"imageLayoutVersion"\s*:\s*"1\.\d+\.\d+"/.test(layout)) {
      throw new OciImageError("format", `${this.what}: oci-layout: unsupported imageLayoutVersion`);
    }
    const indexBytes = await readMember(this.files, "index.json", MAX_MANIFEST_BYTES);
    const index = parseManifestDocument(indexBytes, `${this.what}: index.json`);
    if (index.kind !== "index")
      throw new OciImageError("format", `${this.what}: index.json is not an image index`);
    const tags = index.manifests
      .map((d) => d.annotations[REF_NAME_ANNOTATION])
      .filter((t) => t !== undefined);
    let chosen: Descriptor | undefined;
    if (this.tag !== undefined) {
      chosen = index.manifests.find((d) => d.annotations[REF_NAME_ANNOTATION] === this.tag);
      if (chosen === undefined) {
        throw new OciImageError(
          "source",
          `${this.what}: no image tagged "${this.tag}" (tags: ${tags.length === 0 ? "none" : tags.join(", ")})`,
        );
      }
    } else if (index.manifests.length === 1) {
      chosen = index.manifests[0]!;
    } else if (tags.length === 0) {
      // An untagged multi-platform layout: index.json itself is the index to choose from.
      return { bytes: indexBytes, annotations: {} };
    } else {
      throw new OciImageError(
        "usage",
        `${this.what}: holds several images; name one with :TAG (tags: ${tags.join(", ")})`,
      );
    }
    const tag = chosen.annotations[REF_NAME_ANNOTATION];
    return {
      bytes: await this.manifest(chosen),
      contentType: chosen.mediaType,
      annotations: chosen.annotations,
      ...(tag === undefined ? {} : { tag }),
    };
  }

  async manifest(desc: Descriptor): Promise<Buffer> {
    return readVerified(await this.blob(desc), {
      what: `${this.what} manifest ${desc.digest}`,
      digest: desc.digest,
      size: desc.size,
      maxBytes: MAX_MANIFEST_BYTES,
    });
  }

  async blob(desc: { digest: Digest }): Promise<Readable> {
    const name = `blobs/sha256/${digestHex(desc.digest)}`;
    if ((await this.files.size(name)) === undefined) {
      throw new OciImageError("source", `${this.what}: blob ${desc.digest} is missing`);
    }
    return this.files.open(name);
  }
}
