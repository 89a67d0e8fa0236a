// Minimal ZIP reader for NPKs. NPKs only ever contain a handful of *stored* entries, and fs.img
// is loop-mounted straight out of the archive, so we parse the format by hand and reject
// everything an NPK never needs (compression, encryption, data descriptors, ZIP64,
// multi-disk, suspicious names, overlapping or truncated entries) with a precise message.
import type { FileHandle } from "node:fs/promises";
import { crc32 } from "node:zlib";
import { NpkError } from "./errors.js";

export { writeZip } from "./zip-writer.js";
export type { ZipWriteEntry, ZipWriteOptions } from "./zip-writer.js";

export const LOCAL_HEADER_SIGNATURE = 0x04034b50;
export const CENTRAL_HEADER_SIGNATURE = 0x02014b50;
export const END_OF_CENTRAL_DIRECTORY_SIGNATURE = 0x06054b50;
export const LOCAL_HEADER_SIZE = 30;
export const CENTRAL_HEADER_SIZE = 46;
export const END_OF_CENTRAL_DIRECTORY_SIZE = 22;
export const MAX_COMMENT_SIZE = 0xffff;
export const METHOD_STORED = 0;
/** An NPK holds manifest.yaml, signature.yaml and fs.img; a few more entries are tolerated. */
export const MAX_ENTRIES = 16;
/** Central directory bytes for MAX_ENTRIES entries with names of up to 1 KiB and no extras. */
export const MAX_CENTRAL_DIRECTORY_SIZE = MAX_ENTRIES * (CENTRAL_HEADER_SIZE + 1024);
const FLAG_ENCRYPTED = 0x0001;
const FLAG_DATA_DESCRIPTOR = 0x0008;

export interface ZipEntry {
  name: string;
  /** Offset of the local file header in the archive. */
  headerOffset: number;
  /** Offset of the first data byte in the archive. */
  dataOffset: number;
  size: number;
  crc32: number;
}

export interface ZipArchive {
  /** Raw bytes of the archive comment (the NPK meta). */
  comment: Buffer;
  entries: ZipEntry[];
}

/** Rejects names that could escape an extraction directory or are ambiguous. */
export function checkEntryName(name: string): void {
  const reason =
    name.length === 0
      ? "is empty"
      : name.includes("\0")
        ? "contains a NUL byte"
        : name.includes("\\")
          ? "contains a backslash"
          : name.startsWith("/")
            ? "is absolute"
            : name.split("/").some((part) => part === ".." || part === ".")
              ? "contains a '.' or '..' component"
              : name.endsWith("/")
                ? "is a directory"
                : undefined;
  if (reason !== undefined) {
    throw new NpkError("zip", `entry name ${JSON.stringify(name)} ${reason}`);
  }
}

/** What the reader needs of an open archive: a FileHandle, or a WindowedFile in front of one. */
export interface ArchiveFile {
  read<T extends NodeJS.ArrayBufferView>(
    buffer: T,
    offset: number,
    length: number,
    position: number,
  ): Promise<{ bytesRead: number; buffer: T }>;
  stat(): Promise<{ size: number }>;
}

/** Bytes of an archive's head kept by WindowedFile: an NPK's small entries and fs.img's start. */
const HEAD_WINDOW = 8 * 1024;
/** Bytes of an archive's tail kept by WindowedFile: the end record with the longest comment. */
const TAIL_WINDOW = END_OF_CENTRAL_DIRECTORY_SIZE + MAX_COMMENT_SIZE;

/**
 * An open archive read in two reads where one archive is parsed in a dozen small ones: its head
 * (local headers, manifest.yaml and signature.yaml, fs.img's superblock: an NPK puts its small
 * entries first) and its tail (end record, comment, central directory) are read once each, and
 * reads inside them are served from memory; others go to the file. The daemon's start-up scan
 * opens every installed package: each of those reads was a round trip through the thread pool.
 *
 * INVARIANTS: `head` holds the file's bytes [0, head.length) and `tail` its bytes
 * [tailStart, size) as they were when opened (an NPK file is not written once installed; an
 * upload is complete and synced before it is opened).
 */
export class WindowedFile implements ArchiveFile {
  private constructor(
    private readonly file: FileHandle,
    private readonly size: number,
    private readonly head: Buffer,
    private readonly tail: Buffer,
    private readonly tailStart: number,
  ) {}

  static async open(file: FileHandle): Promise<WindowedFile> {
    const { size } = await file.stat();
    if (size <= HEAD_WINDOW + TAIL_WINDOW) {
      const all = await readAt(file, 0, size);
      return new WindowedFile(file, size, all, all, 0);
    }
    const [head, tail] = await Promise.all([
      readAt(file, 0, HEAD_WINDOW),
      readAt(file, size - TAIL_WINDOW, TAIL_WINDOW),
    ]);
    return new WindowedFile(file, size, head, tail, size - TAIL_WINDOW);
  }

  stat(): Promise<{ size: number }> {
    return Promise.resolve({ size: this.size });
  }

  read<T extends NodeJS.ArrayBufferView>(
    buffer: T,
    offset: number,
    length: number,
    position: number,
  ): Promise<{ bytesRead: number; buffer: T }> {
    const end = position + length;
    const from =
      end <= this.head.length
        ? { window: this.head, start: 0 }
        : position >= this.tailStart && end <= this.size
          ? { window: this.tail, start: this.tailStart }
          : undefined;
    if (from === undefined) return this.file.read(buffer, offset, length, position);
    const target = new Uint8Array(buffer.buffer, buffer.byteOffset + offset, length);
    target.set(from.window.subarray(position - from.start, end - from.start));
    return Promise.resolve({ bytesRead: length, buffer });
  }
}

async function readAt(file: ArchiveFile, offset: number, length: number): Promise<Buffer> {
  // Unsafe is safe here: anything but a complete read throws below.
  const buffer = Buffer.allocUnsafe(length);
  const { bytesRead } = await file.read(buffer, 0, length, offset);
  if (bytesRead !== length) {
    throw new NpkError(
      "zip",
      `truncated archive: wanted ${length} bytes at offset ${offset}, got ${bytesRead}`,
    );
  }
  return buffer;
}

async function findEndOfCentralDirectory(file: ArchiveFile, fileSize: number): Promise<number> {
  if (fileSize < END_OF_CENTRAL_DIRECTORY_SIZE) {
    throw new NpkError("zip", `truncated archive: ${fileSize} bytes is smaller than an empty ZIP`);
  }
  const tailSize = Math.min(fileSize, END_OF_CENTRAL_DIRECTORY_SIZE + MAX_COMMENT_SIZE);
  const tailStart = fileSize - tailSize;
  const tail = await readAt(file, tailStart, tailSize);
  // Scan backwards; the record is valid only if its comment runs exactly to the end of the file,
  // which rules out a signature that happens to appear inside the comment.
  for (let at = tailSize - END_OF_CENTRAL_DIRECTORY_SIZE; at >= 0; at--) {
    if (tail.readUInt32LE(at) !== END_OF_CENTRAL_DIRECTORY_SIGNATURE) continue;
    const commentLength = tail.readUInt16LE(at + 20);
    if (at + END_OF_CENTRAL_DIRECTORY_SIZE + commentLength === tailSize) return tailStart + at;
  }
  throw new NpkError("zip", "no end of central directory record found (not a ZIP file or truncated)");
}

function parseCentralEntry(cd: Buffer, at: number, index: number): { entry: ZipEntry; next: number } {
  const where = `central directory entry ${index}`;
  if (at + CENTRAL_HEADER_SIZE > cd.length || cd.readUInt32LE(at) !== CENTRAL_HEADER_SIGNATURE) {
    throw new NpkError("zip", `${where}: bad or truncated header`);
  }
  const flags = cd.readUInt16LE(at + 8);
  const method = cd.readUInt16LE(at + 10);
  const crc = cd.readUInt32LE(at + 16);
  const compressedSize = cd.readUInt32LE(at + 20);
  const size = cd.readUInt32LE(at + 24);
  const nameLength = cd.readUInt16LE(at + 28);
  const extraLength = cd.readUInt16LE(at + 30);
  const commentLength = cd.readUInt16LE(at + 32);
  const disk = cd.readUInt16LE(at + 34);
  const headerOffset = cd.readUInt32LE(at + 42);
  const next = at + CENTRAL_HEADER_SIZE + nameLength + extraLength + commentLength;
  if (next > cd.length) throw new NpkError("zip", `${where}: truncated`);
  const name = cd.toString("utf8", at + CENTRAL_HEADER_SIZE, at + CENTRAL_HEADER_SIZE + nameLength);
  const named = `entry ${JSON.stringify(name)}`;
  checkEntryName(name);
  if (method !== METHOD_STORED) {
    throw new NpkError("zip", `${named} is compressed (method ${method}); NPK entries must be stored`);
  }
  if (flags & FLAG_ENCRYPTED) throw new NpkError("zip", `${named} is encrypted`);
  if (flags & FLAG_DATA_DESCRIPTOR) {
    throw new NpkError("zip", `${named} uses a data descriptor; NPK entries must record sizes in the header`);
  }
  if (disk !== 0)
    throw new NpkError("zip", `${named} is on disk ${disk}; multi-disk archives are not supported`);
  if (size === 0xffffffff || compressedSize === 0xffffffff || headerOffset === 0xffffffff) {
    throw new NpkError("zip", `${named} uses ZIP64, which NPKs do not support`);
  }
  if (compressedSize !== size) {
    throw new NpkError("zip", `${named} is stored but its sizes differ (${compressedSize} != ${size})`);
  }
  return { entry: { name, headerOffset, dataOffset: -1, size, crc32: crc }, next };
}

/** Reads the local header of `entry`, checks it agrees with the central directory, sets dataOffset. */
async function resolveLocalHeader(file: ArchiveFile, entry: ZipEntry): Promise<void> {
  const named = `entry ${JSON.stringify(entry.name)}`;
  const header = await readAt(file, entry.headerOffset, LOCAL_HEADER_SIZE).catch(() => {
    throw new NpkError("zip", `${named}: local header at ${entry.headerOffset} is truncated`);
  });
  if (header.readUInt32LE(0) !== LOCAL_HEADER_SIGNATURE) {
    throw new NpkError("zip", `${named}: no local header at offset ${entry.headerOffset}`);
  }
  const flags = header.readUInt16LE(6);
  const method = header.readUInt16LE(8);
  const crc = header.readUInt32LE(14);
  const compressedSize = header.readUInt32LE(18);
  const size = header.readUInt32LE(22);
  const nameLength = header.readUInt16LE(26);
  const extraLength = header.readUInt16LE(28);
  const name = await readAt(file, entry.headerOffset + LOCAL_HEADER_SIZE, nameLength);
  if (name.toString("utf8") !== entry.name) {
    throw new NpkError("zip", `${named}: local header names ${JSON.stringify(name.toString("utf8"))}`);
  }
  if (method !== METHOD_STORED || flags & FLAG_DATA_DESCRIPTOR) {
    throw new NpkError("zip", `${named}: local header disagrees with the central directory (method/flags)`);
  }
  if (crc !== entry.crc32 || compressedSize !== entry.size || size !== entry.size) {
    throw new NpkError("zip", `${named}: local header disagrees with the central directory (crc/sizes)`);
  }
  entry.dataOffset = entry.headerOffset + LOCAL_HEADER_SIZE + nameLength + extraLength;
}

/** Parses the archive structure of an open file. Entry data is not read. */
export async function readZip(file: ArchiveFile): Promise<ZipArchive> {
  const fileSize = (await file.stat()).size;
  const eocdOffset = await findEndOfCentralDirectory(file, fileSize);
  const eocd = await readAt(file, eocdOffset, END_OF_CENTRAL_DIRECTORY_SIZE);
  const diskNumber = eocd.readUInt16LE(4);
  const cdDisk = eocd.readUInt16LE(6);
  const entriesOnDisk = eocd.readUInt16LE(8);
  const entryCount = eocd.readUInt16LE(10);
  const cdSize = eocd.readUInt32LE(12);
  const cdOffset = eocd.readUInt32LE(16);
  const commentLength = eocd.readUInt16LE(20);
  if (diskNumber !== 0 || cdDisk !== 0 || entriesOnDisk !== entryCount) {
    throw new NpkError("zip", "multi-disk archives are not supported");
  }
  if (cdOffset === 0xffffffff || cdSize === 0xffffffff || entryCount === 0xffff) {
    throw new NpkError("zip", "ZIP64 archives are not supported");
  }
  // Refused before the central directory is read into memory or walked.
  if (entryCount > MAX_ENTRIES) {
    throw new NpkError("zip", `${entryCount} entries; an NPK has at most ${MAX_ENTRIES}`);
  }
  if (cdSize > MAX_CENTRAL_DIRECTORY_SIZE) {
    throw new NpkError(
      "zip",
      `central directory of ${cdSize} bytes; an NPK's is at most ${MAX_CENTRAL_DIRECTORY_SIZE}`,
    );
  }
  if (cdOffset + cdSize !== eocdOffset) {
    throw new NpkError(
      "zip",
      `central directory (offset ${cdOffset}, size ${cdSize}) does not end at the end record (offset ${eocdOffset}): truncated or corrupt`,
    );
  }
  const comment = await readAt(file, eocdOffset + END_OF_CENTRAL_DIRECTORY_SIZE, commentLength);
  const cd = await readAt(file, cdOffset, cdSize);

  const entries: ZipEntry[] = [];
  const names = new Set<string>();
  let at = 0;
  for (let index = 0; index < entryCount; index++) {
    const parsed = parseCentralEntry(cd, at, index);
    if (names.has(parsed.entry.name)) {
      throw new NpkError("zip", `duplicate entry ${JSON.stringify(parsed.entry.name)}`);
    }
    names.add(parsed.entry.name);
    entries.push(parsed.entry);
    at = parsed.next;
  }
  if (at !== cd.length) throw new NpkError("zip", `central directory has ${cd.length - at} trailing bytes`);

  for (const entry of entries) await resolveLocalHeader(file, entry);
  checkLayout(entries, cdOffset);
  return { comment, entries };
}

/** Entries must lie before the central directory and must not overlap each other. */
function checkLayout(entries: ZipEntry[], cdOffset: number): void {
  const sorted = [...entries].sort((a, b) => a.headerOffset - b.headerOffset);
  for (const [i, entry] of sorted.entries()) {
    const end = entry.dataOffset + entry.size;
    if (end > cdOffset) {
      throw new NpkError(
        "zip",
        `entry ${JSON.stringify(entry.name)} extends past the central directory (truncated?)`,
      );
    }
    const next = sorted[i + 1];
    if (next !== undefined && end > next.headerOffset) {
      throw new NpkError(
        "zip",
        `entries ${JSON.stringify(entry.name)} and ${JSON.stringify(next.name)} overlap`,
      );
    }
  }
}

export function findEntry(archive: ZipArchive, name: string): ZipEntry | undefined {
  return archive.entries.find((e) => e.name === name);
}

/** Reads a small entry into memory and checks its CRC. */
export async function readEntry(
  file: ArchiveFile,
  entry: ZipEntry,
  maxSize = 16 * 1024 * 1024,
): Promise<Buffer> {
  if (entry.size > maxSize) {
    throw new NpkError(
      "zip",
      `entry ${JSON.stringify(entry.name)} is ${entry.size} bytes, more than ${maxSize}`,
    );
  }
  const data = await readAt(file, entry.dataOffset, entry.size);
  if (crc32(data) !== entry.crc32) {
    throw new NpkError("zip", `entry ${JSON.stringify(entry.name)} fails its CRC-32 check`);
  }
  return data;
}
