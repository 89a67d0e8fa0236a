// Applies layers, in order, to a root directory on the host: the layer applier.
//
// INVARIANTS (the root is hostile data being assembled; the host must not be touched):
// - Every entry name goes through parseEntryName (no absolute names, no `..`).
// - No write, removal or link ever goes through a symlink: every parent directory is checked
//   with lstat from the root down (ensureParent) and a symlink component is refused, so an
//   earlier entry's symlink (`etc -> /etc`) cannot redirect a later entry; leaves are created
//   with O_EXCL|O_NOFOLLOW (files), mkdir, symlink and link, none of which follow a final link.
// - Hard link targets resolve the same way and must be regular files already in the tree.
// - Device nodes and FIFOs are skipped: the NPK root is a read-only image mounted nodev, and the
//   container gets its devices from `dev` mounts.
// - Content is written while the layer streams; the digests are only known at the end, so a
//   failed layer leaves garbage in the root. The caller owns the root and deletes it on failure.
import { constants } from "node:fs";
import { chmod, link, lstat, mkdir, open, readdir, rm, symlink, unlink } from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import * as zlib from "node:zlib";
import * as tar from "tar-stream";
import { DigestVerifier, type Digest } from "./digest.js";
import type { LayerCompression } from "./documents.js";
import { classifyEntry, LayerWrites, parseEntryName } from "./entry-path.js";
import { OciImageError } from "./errors.js";

/** A member of a tar being extracted (tar-stream does not export the type by name). */
type TarEntry = tar.Extract extends AsyncIterable<infer S> ? S : never;

/** Entries over all layers; each costs some memory for the whiteout bookkeeping. */
const MAX_ENTRIES = 1_000_000;
const MAX_LINK_TARGET_BYTES = 4096;

/** A layer blob as a source hands it over. */
export interface ImageLayer {
  /** For messages: "layer 2 of 3 (sha256:…)". */
  what: string;
  /** The blob's digest and length when the source has a descriptor (not in docker-archive). */
  digest?: Digest;
  size: number;
  compression: LayerCompression;
  /** The raw blob; the applier verifies it. */
  open(signal?: AbortSignal): Promise<Readable>;
}

/** Uncompressed bytes left for the whole image (tar headers included); shared by all layers. */
export class ByteBudget {
  private used = 0;

  constructor(readonly max: number) {}

  take(n: number): void {
    this.used += n;
    if (this.used > this.max) {
      throw new OciImageError(
        "size",
        `the image unpacks to more than ${this.max} bytes (--max-image-size); refused before it fills the disk`,
      );
    }
  }
}

export interface ApplyOptions {
  budget: ByteBudget;
  signal?: AbortSignal;
  /** Told about every skipped entry (device nodes, FIFOs). */
  onSkip?: (message: string) => void;
}

/** Layer application state over one image: the root and the entry count. */
export class LayerApplier {
  private entries = 0;
  /** Directories (by key) known to be real directories under the root; cleared on removals. */
  private readonly knownDirs = new Set<string>();

  constructor(
    private readonly root: string,
    private readonly opts: ApplyOptions,
  ) {}

  /** Applies one layer, verifying its blob and its uncompressed content (`diffId`). */
  async apply(layer: ImageLayer, diffId: Digest): Promise<void> {
    const raw = await layer.open(this.opts.signal);
    const stages: NodeJS.ReadWriteStream[] = [
      new DigestVerifier({
        what: layer.what,
        size: layer.size,
        ...(layer.digest === undefined ? {} : { digest: layer.digest }),
      }),
    ];
    switch (layer.compression) {
      case "none":
        break;
      case "gzip":
        stages.push(createGunzip());
        break;
      case "zstd": {
        // node:zlib has zstd from Node 22.15; Skiff's Node 20 does not.
        const create = (zlib as unknown as { createZstdDecompress?: () => NodeJS.ReadWriteStream })
          .createZstdDecompress;
        if (create === undefined) {
          raw.destroy();
          throw new OciImageError(
            "format",
            `${layer.what}: zstd-compressed layers need Node.js 22.15 or later`,
          );
        }
        stages.push(create());
        break;
      }
    }
    stages.push(
      new DigestVerifier({
        what: `${layer.what} (uncompressed)`,
        digest: diffId,
        onBytes: (n) => this.opts.budget.take(n),
      }),
    );
    const extract = tar.extract();
    // Settles with the pipeline's error (or undefined), never rejects: it is awaited only after
    // the entry loop, and a rejection nobody listens to yet would crash the process.
    const fed: Promise<unknown> = pipeline(
      [raw, ...stages, extract],
      this.opts.signal === undefined ? {} : { signal: this.opts.signal },
    ).then(
      () => undefined,
      (e: unknown) => e ?? new Error("layer stream failed"),
    );
    const writes = new LayerWrites();
    let loopError: unknown;
    try {
      for await (const entry of extract) await this.applyEntry(entry, writes, layer.what);
    } catch (e) {
      loopError = e ?? new Error("layer entry failed");
      extract.destroy(); // ends the pipeline too, so `fed` settles
    }
    const fedError = await fed;
    if (loopError !== undefined) throw pickError(loopError, fedError, layer.what);
    if (fedError !== undefined) throw pickError(fedError, undefined, layer.what);
  }

  private async applyEntry(entry: TarEntry, writes: LayerWrites, what: string): Promise<void> {
    if (++this.entries > MAX_ENTRIES)
      throw new OciImageError("size", `the image has more than ${MAX_ENTRIES} entries`);
    const header = entry.header;
    const parts = parseEntryName(header.name, what);
    const meaning = classifyEntry(parts, what);
    switch (meaning.kind) {
      case "whiteout":
        await drain(entry);
        if (!writes.wrote(meaning.path)) await this.remove(meaning.path, what);
        return;
      case "opaque":
        await drain(entry);
        await this.applyOpaque(meaning.dir, writes, what);
        return;
      case "path":
        if (parts.length === 0) {
          await drain(entry); // the root directory itself ("./"): it exists, its mode is Skiff's
          return;
        }
        await this.write(parts, entry, what);
        writes.add(parts);
        return;
    }
  }

  private async write(parts: string[], entry: TarEntry, what: string): Promise<void> {
    const header = entry.header;
    const name = parts.join("/");
    const mode = (header.mode ?? 0o644) & 0o7777;
    const type = header.type ?? "file";
    switch (type) {
      case "directory": {
        const path = await this.ensureParent(parts, what);
        await drain(entry);
        const existing = await lstatOrUndefined(path);
        if (existing !== undefined && !existing.isDirectory()) await this.removePath(path, false);
        if (existing === undefined || !existing.isDirectory()) await mkdir(path);
        await chmod(path, mode);
        this.knownDirs.add(name);
        return;
      }
      case "file":
      case "contiguous-file": {
        const path = await this.ensureParent(parts, what);
        await this.clearLeaf(path);
        const file = await open(
          path,
          constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
          0o600,
        );
        try {
          for await (const chunk of entry as AsyncIterable<Buffer>) await file.write(chunk);
        } finally {
          await file.close();
        }
        await chmod(path, mode);
        return;
      }
      case "symlink": {
        const target = header.linkname ?? "";
        if (
          target.length === 0 ||
          target.includes("\0") ||
          Buffer.byteLength(target) > MAX_LINK_TARGET_BYTES
        ) {
          throw new OciImageError("layer", `${what}: ${name}: invalid symlink target`);
        }
        const path = await this.ensureParent(parts, what);
        await drain(entry);
        await this.clearLeaf(path);
        await symlink(target, path);
        return;
      }
      case "link": {
        const targetParts = parseEntryName(header.linkname ?? "", `${what}: hard link ${name}`);
        if (targetParts.length === 0)
          throw new OciImageError("layer", `${what}: hard link ${name} to the root`);
        const target = await this.resolveExisting(targetParts, what);
        const stat = target === undefined ? undefined : await lstatOrUndefined(target);
        if (target === undefined || stat === undefined || !stat.isFile()) {
          throw new OciImageError(
            "layer",
            `${what}: hard link ${name} -> ${header.linkname ?? ""}: the target is not a regular file in the image`,
          );
        }
        if (targetParts.join("/") === name)
          throw new OciImageError("layer", `${what}: hard link ${name} to itself`);
        const path = await this.ensureParent(parts, what);
        await drain(entry);
        await this.clearLeaf(path);
        await link(target, path);
        return;
      }
      case "character-device":
      case "block-device":
      case "fifo":
        await drain(entry);
        this.opts.onSkip?.(
          `${what}: ${name}: ${type} skipped (NPK roots are read-only images without device nodes; use a dev mount)`,
        );
        return;
      default:
        // tar-stream reports unknown type flags as null; the static type does not say so.
        throw new OciImageError(
          "layer",
          `${what}: ${name}: unsupported entry type ${String(type as unknown)}`,
        );
    }
  }

  /**
   * The host path of `parts`, after making sure every parent is a real directory under the root
   * (created 0755 when missing, as tar does). A symlink or non-directory parent is refused.
   */
  private async ensureParent(parts: string[], what: string): Promise<string> {
    let path = this.root;
    for (let i = 0; i < parts.length - 1; i++) {
      path = join(path, parts[i]!);
      const key = parts.slice(0, i + 1).join("/");
      if (this.knownDirs.has(key)) continue;
      const stat = await lstatOrUndefined(path);
      if (stat === undefined) {
        await mkdir(path, 0o755);
      } else if (stat.isSymbolicLink()) {
        throw new OciImageError(
          "layer",
          `${what}: ${parts.join("/")}: refused, it would be written through the symlink ${key}`,
        );
      } else if (!stat.isDirectory()) {
        throw new OciImageError("layer", `${what}: ${parts.join("/")}: ${key} is not a directory`);
      }
      this.knownDirs.add(key);
    }
    return join(path, parts[parts.length - 1]!);
  }

  /** The host path of an existing entry reached without symlinks, or undefined. */
  private async resolveExisting(parts: string[], what: string): Promise<string | undefined> {
    let path = this.root;
    for (let i = 0; i < parts.length - 1; i++) {
      path = join(path, parts[i]!);
      const stat = await lstatOrUndefined(path);
      if (stat === undefined) return undefined;
      if (stat.isSymbolicLink()) {
        throw new OciImageError(
          "layer",
          `${what}: ${parts.join("/")}: refused, it is reached through a symlink`,
        );
      }
      if (!stat.isDirectory()) return undefined;
    }
    return join(path, parts[parts.length - 1]!);
  }

  /** Removes what a whiteout names (and everything below it); nothing there is fine. */
  private async remove(parts: string[], what: string): Promise<void> {
    const path = await this.resolveExisting(parts, what);
    if (path !== undefined) await this.removePath(path, true);
  }

  /** Removes lower-layer content below `dir`, keeping what this layer wrote (LayerWrites). */
  private async applyOpaque(dir: string[], writes: LayerWrites, what: string): Promise<void> {
    const path = dir.length === 0 ? this.root : await this.resolveExisting(dir, what);
    const stat = path === undefined ? undefined : await lstatOrUndefined(path);
    if (path === undefined || stat === undefined || !stat.isDirectory()) return;
    for (const child of await readdir(path)) {
      const childParts = [...dir, child];
      if (!writes.keepsUnderOpaque(childParts)) await this.removePath(join(path, child), true);
      else if ((await lstat(join(path, child))).isDirectory())
        await this.applyOpaque(childParts, writes, what);
    }
  }

  /** Makes room for a new leaf: removes a previous file, link or directory tree there. */
  private async clearLeaf(path: string): Promise<void> {
    const stat = await lstatOrUndefined(path);
    if (stat !== undefined) await this.removePath(path, stat.isDirectory());
  }

  private async removePath(path: string, recursive: boolean): Promise<void> {
    this.knownDirs.clear();
    if (recursive) await rm(path, { recursive: true, force: true });
    else await unlink(path);
  }
}

async function lstatOrUndefined(path: string) {
  try {
    return await lstat(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
}

async function drain(entry: TarEntry): Promise<void> {
  for await (const _chunk of entry as AsyncIterable<Buffer>) {
    // discarded: whiteouts, directories and links carry no data
  }
}

/**
 * The error to report when the entry loop and the feeding pipeline both may have failed: a
 * refusal of ours first, then the stream's (a digest mismatch explains a truncated tar better
 * than the tar parser does), then a generic "corrupt layer".
 */
function pickError(loop: unknown, fed: unknown, what: string): Error {
  if (loop instanceof OciImageError) return loop;
  if (fed instanceof OciImageError) return fed;
  if (loop instanceof Error && loop.name === "AbortError") return loop;
  const detail = loop instanceof Error ? loop.message : String(loop);
  // An errno error is the host's trouble (no space, no permission), not the layer's.
  if (
    typeof (loop as NodeJS.ErrnoException | undefined)?.code === "string" &&
    /^E[A-Z]+$/.test((loop as NodeJS.ErrnoException).code!)
  ) {
    return new OciImageError("source", `${what}: cannot unpack: ${detail}`, { cause: loop });
  }
  return new OciImageError("layer", `${what}: corrupt layer: ${detail}`, { cause: loop });
}
