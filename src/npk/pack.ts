// `pack`: manifest + root directory -> NPK(s). Entry order and content follow Northstar:
// manifest.yaml (re-serialized manifest), signature.yaml when a key is given, then fs.img
// aligned to 4096 bytes. Output is written to a temporary name and renamed, so a failed or
// aborted pack leaves nothing behind.
import { createHash } from "node:crypto";
import { mkdtemp, readFile, rename, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { extname, join } from "node:path";
import { NpkError, asNpkError } from "./errors.js";
import { ManifestError, manifestToYaml, parseManifest } from "./manifest/index.js";
import type { Manifest } from "./manifest/index.js";
import { encodeMeta } from "./meta.js";
import { buildFsImage, defaultCompression } from "./mkfs.js";
import type { Compression, FsKind } from "./mkfs.js";
import { FS_IMG_ALIGNMENT, FS_IMG_NAME, MANIFEST_NAME, NPK_EXTENSION, SIGNATURE_NAME } from "./npk.js";
import { readPrivateKey, signHashes } from "./signature.js";
import { appendVerity } from "./verity.js";
import { writeZip } from "./zip.js";
import type { ZipWriteEntry } from "./zip.js";
import { ifExists } from "../common/errors.js";

export interface PackProgress {
  phase: "mkfs" | "verity" | "write";
  /** For "write": the package being written and bytes of fs.img copied so far. */
  file?: string;
  done?: number;
  total?: number;
}

export interface PackOptions {
  manifestPath: string;
  rootDir: string;
  keyPath?: string;
  /** Output file, or an existing directory (file name `<name>-<version>.npk`). */
  out: string;
  compression?: Compression;
  blockSize?: number;
  fs?: FsKind;
  /** Write this many packages named `<name>-<n>` (only for containers with an init). */
  clones?: number;
  onProgress?: (p: PackProgress) => void;
  signal?: AbortSignal;
}

function manifestFormat(path: string): "yaml" | "json" | "toml" {
  const ext = extname(path).toLowerCase();
  return ext === ".json" ? "json" : ext === ".toml" ? "toml" : "yaml";
}

export async function loadManifestFile(path: string): Promise<Manifest> {
  const text = await readFile(path, "utf8").catch((e: unknown) => {
    throw asNpkError("io", `cannot read manifest ${path}`, e);
  });
  try {
    return parseManifest(text, manifestFormat(path));
  } catch (e) {
    if (e instanceof ManifestError) {
      const details = e.errors.map((x) => `${x.path}: ${x.reason}`).join("; ");
      throw new NpkError("manifest", `${path}: ${details}`, { cause: e });
    }
    throw asNpkError("manifest", path, e);
  }
}

/** Manifests to write: one, or `clones` copies with the clone number appended to the name. */
export function cloneManifests(manifest: Manifest, clones: number | undefined): Manifest[] {
  if (clones === undefined || manifest.init === undefined) return [manifest];
  const width = String(clones).length;
  return Array.from({ length: clones }, (_, n) => ({
    ...manifest,
    name: `${manifest.name}-${String(n).padStart(width, "0")}`,
  }));
}

async function isDirectory(path: string): Promise<boolean> {
  return (await ifExists(stat(path)))?.isDirectory() ?? false;
}

function sha256Hex(data: Buffer | string): string {
  return createHash("sha256").update(data).digest("hex");
}

/** Packs and returns the paths of the written NPKs. */
export async function pack(opts: PackOptions): Promise<string[]> {
  const fs = opts.fs ?? "squashfs";
  const outIsDir = await isDirectory(opts.out);
  if (opts.clones !== undefined && (!outIsDir || !Number.isInteger(opts.clones) || opts.clones < 1)) {
    throw new NpkError("usage", "clones must be a positive integer and the output an existing directory");
  }
  const manifest = await loadManifestFile(opts.manifestPath);
  const key = opts.keyPath === undefined ? undefined : await readPrivateKey(opts.keyPath);
  const work = await mkdtemp(join(tmpdir(), "skiff-pack-"));
  const written: string[] = [];
  try {
    const image = join(work, FS_IMG_NAME);
    opts.onProgress?.({ phase: "mkfs" });
    const mkfsOptions = { fs, compression: opts.compression ?? defaultCompression(fs), signal: opts.signal };
    await buildFsImage(manifest, opts.rootDir, image, work, { ...mkfsOptions, blockSize: opts.blockSize });
    let verity: { rootHash: Buffer; verityOffset: number } | undefined;
    if (key !== undefined) {
      opts.onProgress?.({ phase: "verity" });
      verity = await appendVerity(image, opts.signal);
    }
    const imageSize = (await stat(image)).size;
    const meta = encodeMeta();
    for (const m of cloneManifests(manifest, opts.clones)) {
      const manifestYaml = manifestToYaml(m);
      const entries: ZipWriteEntry[] = [{ name: MANIFEST_NAME, data: Buffer.from(manifestYaml, "utf8") }];
      if (key !== undefined && verity !== undefined) {
        const hashes = {
          metaHash: sha256Hex(meta),
          manifestHash: sha256Hex(manifestYaml),
          verityHash: verity.rootHash.toString("hex"),
          verityOffset: verity.verityOffset,
        };
        entries.push({ name: SIGNATURE_NAME, data: Buffer.from(signHashes(hashes, key), "utf8") });
      }
      entries.push({ name: FS_IMG_NAME, data: { path: image }, align: FS_IMG_ALIGNMENT });
      const dest = outIsDir ? join(opts.out, `${m.name}-${m.version}${NPK_EXTENSION}`) : opts.out;
      const partial = `${dest}.partial-${process.pid}`;
      try {
        await writeZip(partial, entries, {
          comment: meta,
          signal: opts.signal,
          onBytes: (done) => opts.onProgress?.({ phase: "write", file: dest, done, total: imageSize }),
        });
        await rename(partial, dest);
      } catch (e) {
        await rm(partial, { force: true });
        throw e;
      }
      written.push(dest);
    }
    return written;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
