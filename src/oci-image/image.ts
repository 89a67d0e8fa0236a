// Pulls an image from any source kind and unpacks its layers into a root directory: the entry
// point for callers that want the file system (skiff pack --from-oci; an image service later).
import { mkdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { ByteBudget, LayerApplier } from "./apply.js";
import { resolveDockerArchive } from "./docker-archive.js";
import type { Platform } from "./documents.js";
import { OciImageError, asOciImageError } from "./errors.js";
import { DirectoryFiles, StagedArchive } from "./files.js";
import { hostPlatform } from "./platform.js";
import type { ImageSourceRef } from "./reference.js";
import { RegistryStore, type RegistryCredentials } from "./registry.js";
import { LayoutStore, resolveFromStore, type ResolvedImage } from "./resolve.js";

/** Default --max-image-size: compressed blobs and, separately, the unpacked tree. */
export const DEFAULT_MAX_IMAGE_SIZE = 2 * 1024 * 1024 * 1024;

export interface UnpackOptions {
  /** The platform the image must be for; default this machine's. */
  platform?: Platform;
  /** Bound on the blobs read and, separately, on the unpacked bytes. */
  maxImageSize?: number;
  credentials?: RegistryCredentials;
  signal?: AbortSignal;
  /** Skipped entries and other things the user should know. */
  onWarning?: (message: string) => void;
  /** One line per phase ("reading layer 1 of 3 …"). */
  onProgress?: (message: string) => void;
  /** Called with the resolved image before any layer is read: a throw here stops cheaply. */
  beforeLayers?: (image: ResolvedImage) => void | Promise<void>;
}

/**
 * Resolves `source`, then applies its layers to `root` (an empty directory the caller made).
 * `work` is a scratch directory for staging archives. The caller removes both on failure;
 * nothing is written anywhere else.
 */
export async function unpackImage(
  source: ImageSourceRef,
  root: string,
  work: string,
  opts: UnpackOptions = {},
): Promise<ResolvedImage> {
  const platform = opts.platform ?? hostPlatform();
  const max = opts.maxImageSize ?? DEFAULT_MAX_IMAGE_SIZE;
  const { signal } = opts;
  let registry: RegistryStore | undefined;
  try {
    let image: ResolvedImage;
    switch (source.kind) {
      case "oci-layout": {
        const s = await stat(source.dir).catch((e: unknown) => {
          throw asOciImageError("source", `cannot read ${source.dir}`, e);
        });
        if (!s.isDirectory()) {
          throw new OciImageError(
            "source",
            `${source.dir} is not a directory (archives need oci-archive: or docker-archive:)`,
          );
        }
        image = await resolveFromStore(
          new LayoutStore(new DirectoryFiles(source.dir, source.dir), source.tag),
          platform,
          max,
          signal,
        );
        break;
      }
      case "oci-archive":
      case "docker-archive": {
        const staging = join(work, "staging");
        await mkdir(staging);
        opts.onProgress?.(`reading ${source.file}`);
        const files = await StagedArchive.stage(source.file, staging, max, signal);
        image =
          source.kind === "oci-archive"
            ? await resolveFromStore(new LayoutStore(files, source.tag), platform, max, signal)
            : await resolveDockerArchive(files, source.tag, platform, max);
        break;
      }
      case "registry":
        registry = new RegistryStore(
          source.ref,
          opts.credentials === undefined ? {} : { credentials: opts.credentials },
        );
        image = await resolveFromStore(registry, platform, max, signal);
        break;
    }
    await opts.beforeLayers?.(image);
    const applier = new LayerApplier(root, {
      budget: new ByteBudget(max),
      ...(signal === undefined ? {} : { signal }),
      ...(opts.onWarning === undefined ? {} : { onSkip: opts.onWarning }),
    });
    for (const [i, layer] of image.layers.entries()) {
      opts.onProgress?.(`applying ${layer.what}, ${layer.size} bytes`);
      await applier.apply(layer, image.config.diffIds[i]!);
    }
    return image;
  } finally {
    await registry?.close();
  }
}
