// Opening an NPK: ZIP structure, meta, manifest, optional signature and the location of
// fs.img and its verity hash tree. With a key every hash and the signature are checked; the
// (expensive) verity check of fs.img itself is `verifyFsImage`, so the daemon picks when.
import { createHash } from "node:crypto";
import type { KeyObject } from "node:crypto";
import { open } from "node:fs/promises";
import { isDeepStrictEqual } from "node:util";
import { NpkError, asNpkError } from "./errors.js";
import { MANIFEST_LIMITS } from "./manifest/reader.js";
import { ManifestError, parseManifest } from "./manifest/index.js";
import type { Manifest } from "./manifest/index.js";
import { parseManifestOffLoop } from "./manifest/worker.js";
import { parseMeta } from "./meta.js";
import { decodeSignature, verifySignature } from "./signature.js";
import type { DecodedSignature } from "./signature.js";
import { VERITY_BLOCK_SIZE, decodeSuperblock, hashAreaSize, verifyVerity } from "./verity.js";
import type { VeritySuperblock } from "./verity.js";
import { WindowedFile, findEntry, readEntry, readZip } from "./zip.js";
import type { ArchiveFile, ZipArchive } from "./zip.js";
import { FS_IMG_NAME, MANIFEST_NAME, SIGNATURE_NAME } from "./names.js";

export { MANIFEST_NAME, SIGNATURE_NAME, FS_IMG_NAME, NPK_EXTENSION } from "./names.js";
export const FS_IMG_ALIGNMENT = 4096;

export type FsType = "squashfs" | "erofs";
const SQUASHFS_MAGIC = 0x73717368; // "hsqs"
const EROFS_MAGIC = 0xe0f5e1e2;
const EROFS_SUPERBLOCK_OFFSET = 1024;

export interface NpkFsImage {
  /** Offset of fs.img's first byte inside the NPK (4096-aligned). */
  offset: number;
  /** Size of the fs.img entry, including any verity data. */
  size: number;
  type: FsType;
}

export interface NpkVerity {
  /** Offset of the superblock inside fs.img; also the size of the file system data. */
  offset: number;
  rootHash: string;
  superblock: VeritySuperblock;
}

export interface Npk {
  path: string;
  /** NPK format version from the ZIP comment. */
  version: string;
  entries: string[];
  manifestText: string;
  manifest: Manifest;
  /** Present when the package has a signature.yaml that parsed. */
  signature?: DecodedSignature & { text: string };
  /** True when opened with a key and everything (but fs.img content) verified. */
  verified: boolean;
  fsImage: NpkFsImage;
  /** Present when the package is signed (verity data located via signature.yaml). */
  verity?: NpkVerity;
}

export interface OpenNpkOptions {
  /** Ed25519 public key (KeyObject or raw 32 bytes). With it, the package must be signed. */
  key?: KeyObject | Buffer;
  /** Parsed manifests by the sha256 of their bytes: skips the YAML parse of a known manifest. */
  manifestCache?: ManifestCache;
}

/**
 * Manifests parsed before, as the JSON of the parsed Manifest, by the sha256 of the manifest
 * bytes. The daemon keeps one per repository under its run directory (daemon-owned, like the
 * bundles it hands to runc), so that start-up with many packages does not parse each YAML again
 * (2.5 ms each on the 2-core dev machine, JSON 0.1 ms). An entry is only a shortcut: the bytes
 * are still read from the package and hashed (and checked against the signature), and the JSON
 * goes through the same validation as any manifest.
 */
export interface ManifestCache {
  get(sha256: string): string | undefined;
  set(sha256: string, json: string): void;
}

/**
 * Only small manifests are cached: their JSON is parsed on the event loop (well under a
 * millisecond at this size); bigger ones keep going to the worker.
 */
export const MAX_CACHED_MANIFEST_JSON = 4096;

export function detectFsType(head: Buffer): FsType | undefined {
  if (head.length >= 4 && head.readUInt32LE(0) === SQUASHFS_MAGIC) return "squashfs";
  if (
    head.length >= EROFS_SUPERBLOCK_OFFSET + 4 &&
    head.readUInt32LE(EROFS_SUPERBLOCK_OFFSET) === EROFS_MAGIC
  ) {
    return "erofs";
  }
  return undefined;
}

function sha256Hex(data: Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}

function checkHash(what: string, expected: string, data: Buffer): void {
  const actual = sha256Hex(data);
  if (actual !== expected)
    throw new NpkError("hash", `invalid ${what} hash (expected=${expected} actual=${actual})`);
}

/** Reads an entry of at most `maxSize` bytes (checked before anything is allocated). */
async function readText(
  file: ArchiveFile,
  zip: ZipArchive,
  name: string,
  maxSize: number,
): Promise<Buffer | undefined> {
  const entry = findEntry(zip, name);
  return entry === undefined ? undefined : readEntry(file, entry, maxSize);
}

/** signature.yaml is four hashes and a signature, about 400 bytes as Northstar writes it. */
export const MAX_SIGNATURE_SIZE = 4096;

/** Parsed in a worker thread: even a manifest within the limits takes too long for the loop. */
async function parseManifestText(text: string): Promise<Manifest> {
  try {
    return await parseManifestOffLoop(text, "yaml");
  } catch (e) {
    if (e instanceof ManifestError) {
      const details = e.errors.map((x) => `${x.path}: ${x.reason}`).join("; ");
      throw new NpkError("manifest", `invalid ${MANIFEST_NAME}: ${details}`, { cause: e });
    }
    throw asNpkError("manifest", `invalid ${MANIFEST_NAME}`, e);
  }
}

async function parseManifestCached(
  text: string,
  bytes: Buffer,
  cache: ManifestCache | undefined,
): Promise<Manifest> {
  if (cache === undefined) return parseManifestText(text);
  const digest = sha256Hex(bytes);
  const known = cache.get(digest);
  if (known !== undefined && known.length <= MAX_CACHED_MANIFEST_JSON) {
    try {
      return parseManifest(known, "json");
    } catch {
      // A stale or damaged entry: the YAML decides.
    }
  }
  const manifest = await parseManifestText(text);
  const json = JSON.stringify(manifest);
  // Cached only when the JSON gives back exactly this manifest.
  if (json.length <= MAX_CACHED_MANIFEST_JSON) {
    try {
      if (isDeepStrictEqual(parseManifest(json, "json"), manifest)) cache.set(digest, json);
    } catch {
      // Not representable as JSON input: parsed from YAML every time.
    }
  }
  return manifest;
}

async function locateFsImage(file: ArchiveFile, zip: ZipArchive): Promise<NpkFsImage> {
  const entry = findEntry(zip, FS_IMG_NAME);
  if (entry === undefined) throw new NpkError("fs", `${FS_IMG_NAME} is missing`);
  if (entry.dataOffset % FS_IMG_ALIGNMENT !== 0) {
    throw new NpkError(
      "fs",
      `${FS_IMG_NAME} starts at offset ${entry.dataOffset}, not ${FS_IMG_ALIGNMENT}-aligned`,
    );
  }
  const head = Buffer.alloc(Math.min(entry.size, EROFS_SUPERBLOCK_OFFSET + 4));
  await file.read(head, 0, head.length, entry.dataOffset);
  const type = detectFsType(head);
  if (type === undefined) throw new NpkError("fs", `${FS_IMG_NAME} is neither a squashfs nor an erofs image`);
  return { offset: entry.dataOffset, size: entry.size, type };
}

async function locateVerity(file: ArchiveFile, fs: NpkFsImage, sig: DecodedSignature): Promise<NpkVerity> {
  const offset = sig.hashes.verityOffset;
  if (offset % VERITY_BLOCK_SIZE !== 0 || offset === 0 || offset + hashAreaSize(offset) > fs.size) {
    throw new NpkError("verity", `verity-offset ${offset} does not fit ${FS_IMG_NAME} of ${fs.size} bytes`);
  }
  const raw = Buffer.alloc(VERITY_BLOCK_SIZE);
  await file.read(raw, 0, raw.length, fs.offset + offset);
  const superblock = decodeSuperblock(raw);
  if (superblock.dataBlocks !== BigInt(offset / VERITY_BLOCK_SIZE)) {
    throw new NpkError(
      "verity",
      `verity superblock covers ${superblock.dataBlocks} blocks, expected ${offset / VERITY_BLOCK_SIZE}`,
    );
  }
  return { offset, rootHash: sig.hashes.verityHash, superblock };
}

/** Opens and checks an NPK. Throws NpkError. */
export async function openNpk(path: string, opts: OpenNpkOptions = {}): Promise<Npk> {
  const file = await open(path, "r").catch((e: unknown) => {
    throw asNpkError("io", `cannot open ${path}`, e);
  });
  try {
    return await readNpk(path, await WindowedFile.open(file), opts);
  } finally {
    await file.close();
  }
}

async function readNpk(path: string, file: ArchiveFile, opts: OpenNpkOptions): Promise<Npk> {
  const zip = await readZip(file);
  const signatureBytes = await readText(file, zip, SIGNATURE_NAME, MAX_SIGNATURE_SIZE);
  let signature: Npk["signature"];
  if (signatureBytes !== undefined) {
    const text = signatureBytes.toString("utf8");
    try {
      signature = { ...decodeSignature(text), text };
    } catch (e) {
      // Without a key an unreadable signature is only informational, as in Northstar.
      if (opts.key !== undefined) throw e;
    }
  }
  if (opts.key !== undefined) {
    if (signature === undefined) throw new NpkError("signature", `${SIGNATURE_NAME} is missing`);
    verifySignature(signature, opts.key);
    checkHash("meta", signature.hashes.metaHash, zip.comment);
  }
  const version = parseMeta(zip.comment);
  const manifestBytes = await readText(file, zip, MANIFEST_NAME, MANIFEST_LIMITS.maxBytes);
  if (manifestBytes === undefined) throw new NpkError("manifest", `${MANIFEST_NAME} is missing`);
  if (opts.key !== undefined && signature !== undefined) {
    checkHash("manifest", signature.hashes.manifestHash, manifestBytes);
  }
  const manifestText = manifestBytes.toString("utf8");
  const manifest = await parseManifestCached(manifestText, manifestBytes, opts.manifestCache);
  const fsImage = await locateFsImage(file, zip);
  let verity: NpkVerity | undefined;
  if (signature !== undefined) {
    verity = await locateVerity(file, fsImage, signature).catch((e: unknown) => {
      if (opts.key !== undefined) throw e;
      return undefined;
    });
  }
  const npk: Npk = {
    path,
    version,
    entries: zip.entries.map((e) => e.name),
    manifestText,
    manifest,
    verified: opts.key !== undefined,
    fsImage,
  };
  if (signature !== undefined) npk.signature = signature;
  if (verity !== undefined) npk.verity = verity;
  return npk;
}

/** Userspace dm-verity check of the whole fs.img against the signed root hash. */
export async function verifyFsImage(npk: Npk, signal?: AbortSignal): Promise<void> {
  if (npk.verity === undefined) throw new NpkError("verity", `${npk.path} is not signed: no verity data`);
  const range = { path: npk.path, offset: npk.fsImage.offset, size: npk.verity.offset };
  await verifyVerity(
    range,
    npk.fsImage.offset + npk.verity.offset,
    Buffer.from(npk.verity.rootHash, "hex"),
    signal,
  );
}
