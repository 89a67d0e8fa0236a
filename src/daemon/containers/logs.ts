/**
 * Reads a container's log as the native monitor writes it (native/monitor/logfile.c): in the
 * container's state directory, `container.log` and, rotated by size, `container.log.1` (newest)
 * .. `container.log.N` (oldest), one record per output line, `<RFC3339 ms UTC> <stdout|stderr>
 * <text>\n`. Rotation renames `.i` to `.i+1` (the oldest falls off), renames `container.log` to
 * `.1` and creates a new `container.log`; with zero rotated files it truncates in place.
 *
 * Offsets. An offset names a line start in one file: `tag * 2^40 + position`, where `tag` is
 * `1 + (inode mod 8191)` of the file and `position` a byte offset just after a newline (or 0). A rename keeps the
 * inode, so the offset stays valid while the file moves from `container.log` to `.1`, `.2`, ...;
 * a follower reads the rest of that file, then every newer one. Offset 0 means "the oldest line
 * kept". Each number is a safe integer (< 2^53); files must stay below 1 TiB (the monitor's own
 * limit for a rotating log). An offset whose file is gone, or whose position does not follow a
 * newline in a file with that tag (it was truncated), continues from the oldest line kept: the
 * lines in between were deleted. Known limits: with zero rotated files, a file truncated and
 * rewritten past the position between two calls is not noticed; and a follower that falls behind
 * by all N rotations may meet its old inode number reused by a newer file.
 *
 * Only complete lines are returned: a trailing partial line is returned once its newline is
 * written. A rotated file is final, so a partial line at its end (a failed write) is skipped.
 *
 * One answer holds at most MAX_LOG_LINES lines and MAX_LOG_BYTES bytes (lines plus their
 * newlines); a follower gets the rest on its next call. Reads go in CHUNK_BYTES pieces.
 *
 * Errors: RangeError for a line count or offset no caller should send (answer invalid_arguments);
 * Error for a "line" over 1 MiB (not a monitor log) or files that kept rotating while opened.
 * A missing directory or log is no error: it has no lines yet.
 */
import { open, readdir, stat, type FileHandle } from "node:fs/promises";
import { join } from "node:path";

export const MAX_LOG_LINES = 10_000;
export const MAX_LOG_BYTES = 1024 * 1024;
const CHUNK_BYTES = 64 * 1024;
const NEWLINE = 0x0a;
const LOG_NAME = /^container\.log(?:\.([1-9][0-9]*))?$/;

const POSITION_BITS = 2 ** 40;
const TAG_MODULUS = 8191n;

export interface LogSlice {
  /** Records without their newline, oldest first. */
  lines: string[];
  /** Where the next readLogSince continues (see the module header). */
  offset: number;
}

/** The last `lines` lines (at most MAX_LOG_LINES, MAX_LOG_BYTES) and the offset of the end. */
export async function readLogTail(dir: string, lines: number): Promise<LogSlice> {
  if (!Number.isInteger(lines) || lines < 0) throw new RangeError(`log lines: ${lines} is not a count`);
  const wanted = Math.min(lines, MAX_LOG_LINES);
  return withSnapshot(dir, async (files) => {
    const newest = files.at(-1);
    if (newest === undefined) return { lines: [], offset: 0 };
    const newestEnd = await completeEnd(newest);
    const collected: string[] = [];
    let bytes = 0;
    collect: for (let i = files.length - 1; i >= 0 && collected.length < wanted; i--) {
      const file = files[i]!;
      const end = file === newest ? newestEnd : await completeEnd(file);
      for await (const line of linesBackward(file, end)) {
        if (collected.length >= wanted || bytes + line.length + 1 > MAX_LOG_BYTES) break collect;
        collected.push(line.toString("utf8"));
        bytes += line.length + 1;
      }
    }
    return { lines: collected.reverse(), offset: encodeOffset(newest.ino, newestEnd) };
  });
}

/** The lines written since `offset` (0: from the oldest line kept), up to the limits. */
export async function readLogSince(dir: string, offset: number): Promise<LogSlice> {
  const wanted = decodeOffset(offset);
  return withSnapshot(dir, async (files) => {
    if (files.length === 0) return { lines: [], offset: 0 };
    const start = (wanted && (await locate(files, wanted))) ?? { index: 0, position: 0 };
    const lines: string[] = [];
    let bytes = 0;
    let position = start.position;
    for (let i = start.index; i < files.length; i++) {
      const file = files[i]!;
      position = i === start.index ? start.position : 0;
      for await (const { line, end } of linesForward(file, position)) {
        if (lines.length >= MAX_LOG_LINES || bytes + line.length + 1 > MAX_LOG_BYTES) {
          return { lines, offset: encodeOffset(file.ino, position) };
        }
        lines.push(line.toString("utf8"));
        bytes += line.length + 1;
        position = end;
      }
      // End of file: a rotated file gets no more lines, so go on with the next one from its start.
    }
    return { lines, offset: encodeOffset(files.at(-1)!.ino, position) };
  });
}

// ---------------------------------------------------------------------------------------------
// Offsets.

interface Place {
  tag: number;
  position: number;
}

function tagOf(ino: bigint): number {
  return Number(ino % TAG_MODULUS) + 1;
}

function encodeOffset(ino: bigint, position: number): number {
  if (position >= POSITION_BITS) throw new RangeError("container log: file is 1 TiB or larger");
  return tagOf(ino) * POSITION_BITS + position;
}

function decodeOffset(offset: number): Place | undefined {
  if (offset === 0) return undefined;
  const tag = Math.floor(offset / POSITION_BITS);
  if (!Number.isSafeInteger(offset) || tag < 1) {
    throw new RangeError(`log offset: ${offset} is not an offset this daemon gave out`);
  }
  return { tag, position: offset % POSITION_BITS };
}

/** The newest file with the place's tag in which the position is a line start. */
async function locate(
  files: LogFile[],
  place: Place,
): Promise<{ index: number; position: number } | undefined> {
  for (let i = files.length - 1; i >= 0; i--) {
    const file = files[i]!;
    if (tagOf(file.ino) !== place.tag || place.position > file.size) continue;
    if (place.position === 0 || (await byteAt(file, place.position - 1)) === NEWLINE) {
      return { index: i, position: place.position };
    }
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// A consistent set of open log files.

interface LogFile {
  handle: FileHandle;
  ino: bigint;
  /** Size when opened; the newest file may have grown since. */
  size: number;
}

const SNAPSHOT_ATTEMPTS = 10;

/**
 * Opens the log files, oldest first, and runs `body` on them. A rotation while opening could
 * make a file appear twice or not at all, so the names are checked again after opening and the
 * set is opened anew if any name moved. Open handles keep the contents readable afterwards.
 */
async function withSnapshot<T>(dir: string, body: (files: LogFile[]) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const names = await logNames(dir);
    // In parallel, to keep the window for a rotation small.
    const opened = await Promise.allSettled(names.map((name) => openLogFile(join(dir, name))));
    const files = opened.flatMap((o) => (o.status === "fulfilled" && o.value ? [o.value] : []));
    try {
      const failed = opened.find((o) => o.status === "rejected");
      if (failed) throw failed.reason;
      if (await unchanged(dir, names, files)) return await body(files);
    } finally {
      await Promise.all(files.map((f) => f.handle.close()));
    }
    if (attempt === SNAPSHOT_ATTEMPTS) {
      throw new Error(`container log in ${dir}: files kept rotating while being opened`);
    }
  }
}

async function openLogFile(path: string): Promise<LogFile | undefined> {
  const handle = await open(path, "r").catch(ignoreMissing);
  if (handle === undefined) return undefined;
  try {
    const info = await handle.stat({ bigint: true });
    return { handle, ino: info.ino, size: Number(info.size) };
  } catch (e) {
    await handle.close();
    throw e;
  }
}

/** The log file names in `dir`, oldest first (highest rotation number first). */
async function logNames(dir: string): Promise<string[]> {
  const entries = await readdir(dir).catch(ignoreMissing);
  const numbered: [number, string][] = [];
  for (const name of entries ?? []) {
    const match = LOG_NAME.exec(name);
    if (match) numbered.push([match[1] === undefined ? 0 : Number(match[1]), name]);
  }
  return numbered.sort((a, b) => b[0] - a[0]).map(([, name]) => name);
}

async function unchanged(dir: string, names: string[], files: LogFile[]): Promise<boolean> {
  if (files.length !== names.length) return false;
  const [now, inodes] = await Promise.all([
    logNames(dir),
    Promise.all(names.map((n) => stat(join(dir, n), { bigint: true }).then((i) => i.ino, ignoreMissing))),
  ]);
  if (now.length !== names.length || now.some((n, i) => n !== names[i])) return false;
  return inodes.every((ino, i) => ino === files[i]!.ino);
}

function ignoreMissing(e: unknown): undefined {
  if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
  throw e;
}

// ---------------------------------------------------------------------------------------------
// Reading lines.

async function byteAt(file: LogFile, position: number): Promise<number | undefined> {
  const one = Buffer.alloc(1);
  const { bytesRead } = await file.handle.read(one, 0, 1, position);
  return bytesRead === 1 ? one[0] : undefined;
}

/** The position just after the file's last newline (0 if it has none). */
async function completeEnd(file: LogFile): Promise<number> {
  let position = file.size;
  while (position > 0) {
    const from = Math.max(0, position - CHUNK_BYTES);
    const chunk = await readAt(file, from, position - from);
    const last = chunk.lastIndexOf(NEWLINE);
    if (last >= 0) return from + last + 1;
    position = from;
  }
  return 0;
}

/** Complete lines before `end` (which follows a newline), newest first, without newlines. */
async function* linesBackward(file: LogFile, end: number): AsyncGenerator<Buffer> {
  // `pending` holds the bytes of the line ending at the newline at `end - 1`, as far as read.
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let position = end > 0 ? end - 1 : 0;
  while (position > 0) {
    const from = Math.max(0, position - CHUNK_BYTES);
    const chunk = await readAt(file, from, position - from);
    let lineEnd = chunk.length;
    for (let j = chunk.lastIndexOf(NEWLINE); j >= 0; j = j > 0 ? chunk.lastIndexOf(NEWLINE, j - 1) : -1) {
      yield Buffer.concat([chunk.subarray(j + 1, lineEnd), ...pending]);
      pending = [];
      pendingBytes = 0;
      lineEnd = j;
    }
    pending.unshift(chunk.subarray(0, lineEnd));
    pendingBytes += lineEnd;
    if (pendingBytes > MAX_LOG_BYTES) throw lineTooLong(file, from);
    position = from;
  }
  if (end > 0) yield Buffer.concat(pending);
}

/** Complete lines from `start` on, with the position after each line's newline. */
async function* linesForward(file: LogFile, start: number): AsyncGenerator<{ line: Buffer; end: number }> {
  let carry: Buffer = Buffer.alloc(0);
  let position = start;
  for (;;) {
    const chunk = await readAt(file, position, CHUNK_BYTES);
    if (chunk.length === 0) return;
    const data = carry.length > 0 ? Buffer.concat([carry, chunk]) : chunk;
    const dataStart = position - carry.length;
    let lineStart = 0;
    for (let j = data.indexOf(NEWLINE); j >= 0; j = data.indexOf(NEWLINE, j + 1)) {
      yield { line: data.subarray(lineStart, j), end: dataStart + j + 1 };
      lineStart = j + 1;
    }
    carry = data.subarray(lineStart);
    if (carry.length > MAX_LOG_BYTES) throw lineTooLong(file, dataStart + lineStart);
    position += chunk.length;
  }
}

async function readAt(file: LogFile, position: number, length: number): Promise<Buffer> {
  const buffer = Buffer.alloc(length);
  let filled = 0;
  while (filled < length) {
    const { bytesRead } = await file.handle.read(buffer, filled, length - filled, position + filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return buffer.subarray(0, filled);
}

function lineTooLong(file: LogFile, position: number): Error {
  return new Error(`container log (inode ${file.ino}): line at byte ${position} is longer than 1 MiB`);
}
