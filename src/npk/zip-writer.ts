// ZIP writer for NPKs: stored entries only, sizes and CRC in the local header (no data
// descriptor), an archive comment, and optional alignment of one entry's data so fs.img can
// be mounted at an offset inside the NPK. Alignment pads the local header's extra field with
// a "Data Stream Alignment" record (APPNOTE 4.6.11, id 0xA11E: u16 alignment, then zeros),
// the record the Rust zip crate (used by Northstar) writes; readers skip it if unknown.
import { createReadStream } from "node:fs";
import { open, stat } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import { crc32 } from "node:zlib";
import { NpkError } from "./errors.js";

const ALIGNMENT_EXTRA_ID = 0xa11e;
const ALIGNMENT_EXTRA_MIN = 6; // id (2) + size (2) + alignment (2)
const VERSION_NEEDED_STORED = 10;
const VERSION_MADE_BY_UNIX = (3 << 8) | 20;
const UNIX_REGULAR_FILE_0644 = 0o100644;
// A fixed DOS timestamp (1980-01-01 00:00) keeps packages reproducible.
const DOS_TIME = 0;
const DOS_DATE = (1 << 5) | 1;
const MAX_ZIP32 = 0xffffffff;
const COPY_CHUNK = 1024 * 1024;

export interface ZipWriteEntry {
  name: string;
  /** In-memory content, or a file whose whole content is the entry. */
  data: Buffer | { path: string };
  /** Align the first data byte to this many bytes (e.g. 4096). */
  align?: number;
}

export interface ZipWriteOptions {
  comment: Buffer;
  signal?: AbortSignal;
  /** Called with bytes of file-backed entry data copied so far. */
  onBytes?: (copied: number) => void;
}

async function fileCrc32(path: string, signal?: AbortSignal): Promise<number> {
  let crc = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: COPY_CHUNK, signal })) {
    crc = crc32(chunk as Buffer, crc);
  }
  return crc;
}

function localHeader(name: Buffer, crc: number, size: number, extra: Buffer): Buffer {
  const header = Buffer.alloc(30);
  header.writeUInt32LE(0x04034b50, 0);
  header.writeUInt16LE(VERSION_NEEDED_STORED, 4);
  header.writeUInt16LE(0, 6); // flags
  header.writeUInt16LE(0, 8); // method: stored
  header.writeUInt16LE(DOS_TIME, 10);
  header.writeUInt16LE(DOS_DATE, 12);
  header.writeUInt32LE(crc, 14);
  header.writeUInt32LE(size, 18);
  header.writeUInt32LE(size, 22);
  header.writeUInt16LE(name.length, 26);
  header.writeUInt16LE(extra.length, 28);
  return Buffer.concat([header, name, extra]);
}

function centralHeader(name: Buffer, crc: number, size: number, offset: number): Buffer {
  const header = Buffer.alloc(46);
  header.writeUInt32LE(0x02014b50, 0);
  header.writeUInt16LE(VERSION_MADE_BY_UNIX, 4);
  header.writeUInt16LE(VERSION_NEEDED_STORED, 6);
  header.writeUInt16LE(0, 8);
  header.writeUInt16LE(0, 10);
  header.writeUInt16LE(DOS_TIME, 12);
  header.writeUInt16LE(DOS_DATE, 14);
  header.writeUInt32LE(crc, 16);
  header.writeUInt32LE(size, 20);
  header.writeUInt32LE(size, 24);
  header.writeUInt16LE(name.length, 28);
  // extra length 0, comment length 0, disk 0, internal attributes 0
  header.writeUInt32LE((UNIX_REGULAR_FILE_0644 << 16) >>> 0, 38);
  header.writeUInt32LE(offset, 42);
  return Buffer.concat([header, name]);
}

/** Extra field that pads the data of an entry whose header starts at `offset` to `align`. */
export function alignmentExtra(offset: number, nameLength: number, align: number): Buffer {
  const unpadded = offset + 30 + nameLength + ALIGNMENT_EXTRA_MIN;
  const padding = (align - (unpadded % align)) % align;
  const extra = Buffer.alloc(ALIGNMENT_EXTRA_MIN + padding);
  extra.writeUInt16LE(ALIGNMENT_EXTRA_ID, 0);
  extra.writeUInt16LE(extra.length - 4, 2);
  extra.writeUInt16LE(Math.min(align, 0xffff), 4);
  return extra;
}

async function copyFileInto(
  out: FileHandle,
  path: string,
  position: number,
  opts: ZipWriteOptions,
): Promise<void> {
  let copied = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: COPY_CHUNK, signal: opts.signal })) {
    const buffer = chunk as Buffer;
    await out.write(buffer, 0, buffer.length, position + copied);
    copied += buffer.length;
    opts.onBytes?.(copied);
  }
}

/** Writes a complete archive to `outPath` (created or truncated). */
export async function writeZip(
  outPath: string,
  entries: ZipWriteEntry[],
  opts: ZipWriteOptions,
): Promise<void> {
  if (opts.comment.length > 0xffff) throw new NpkError("zip", "archive comment longer than 65535 bytes");
  const out = await open(outPath, "w");
  try {
    const central: Buffer[] = [];
    let offset = 0;
    for (const entry of entries) {
      opts.signal?.throwIfAborted();
      const name = Buffer.from(entry.name, "utf8");
      const size = Buffer.isBuffer(entry.data) ? entry.data.length : (await stat(entry.data.path)).size;
      const crc = Buffer.isBuffer(entry.data)
        ? crc32(entry.data)
        : await fileCrc32(entry.data.path, opts.signal);
      const extra =
        entry.align === undefined ? Buffer.alloc(0) : alignmentExtra(offset, name.length, entry.align);
      const header = localHeader(name, crc, size, extra);
      if (offset + header.length + size > MAX_ZIP32) {
        throw new NpkError(
          "zip",
          `entry ${JSON.stringify(entry.name)} would need ZIP64 (archive over 4 GiB)`,
        );
      }
      await out.write(header, 0, header.length, offset);
      if (Buffer.isBuffer(entry.data)) {
        await out.write(entry.data, 0, entry.data.length, offset + header.length);
      } else {
        await copyFileInto(out, entry.data.path, offset + header.length, opts);
      }
      central.push(centralHeader(name, crc, size, offset));
      offset += header.length + size;
    }
    const cd = Buffer.concat(central);
    const end = Buffer.alloc(22);
    end.writeUInt32LE(0x06054b50, 0);
    end.writeUInt16LE(entries.length, 8);
    end.writeUInt16LE(entries.length, 10);
    end.writeUInt32LE(cd.length, 12);
    end.writeUInt32LE(offset, 16);
    end.writeUInt16LE(opts.comment.length, 20);
    await out.write(Buffer.concat([cd, end, opts.comment]), 0, undefined, offset);
  } finally {
    await out.close();
  }
}
