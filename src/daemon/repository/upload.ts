/**
 * Receiving an NPK over the console: Northstar's `install` request line is followed by exactly
 * `size` raw bytes. They are streamed to a temporary file in the repository, checked against
 * the install size limit before a byte is read, then opened and verified. Runs as a job outside
 * the event loop; its result becomes an event. A failed or interrupted upload leaves nothing.
 *
 * `npk_stream_timeout` (Northstar's): a payload that sends nothing for that long is abandoned,
 * answered with an error, and its connection closed (the stream is out of step by then).
 */
import { randomBytes } from "node:crypto";
import { mkdir, open, rm, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import type { LineReader } from "../../protocol/framing.js";
import type { InstalledPackage, Repository } from "./repository.js";
import { handledElsewhere } from "../../common/errors.js";

export class UploadRejected extends Error {
  override name = "UploadRejected";
  constructor(
    message: string,
    /** The payload was not read, so the stream is out of step: the connection must close. */
    readonly closeConnection: boolean,
  ) {
    super(message);
  }
}

export interface UploadOptions {
  repository: Repository;
  size: number;
  /** The listener's `max_install_size`. */
  maxInstallSize: number;
  /** Bytes still free under the repository's `capacity_size` (Infinity without one). */
  capacityLeft: number;
  reader: LineReader;
  signal: AbortSignal;
  /** Longest pause between two chunks of the payload. */
  streamTimeoutMs: number;
}

export interface ReceivedUpload {
  tempPath: string;
  pkg: InstalledPackage;
}

export async function receiveUpload(o: UploadOptions): Promise<ReceivedUpload> {
  if (o.size > o.maxInstallSize) {
    throw new UploadRejected(
      `package of ${o.size} bytes exceeds the install limit of ${o.maxInstallSize} bytes`,
      true,
    );
  }
  if (o.size > o.capacityLeft) {
    await readPayload(o, () => Promise.resolve());
    throw new UploadRejected(
      `repository ${o.repository.id} has ${o.capacityLeft} bytes left of its capacity, the package needs ${o.size}`,
      false,
    );
  }
  await mkdir(o.repository.uploadDir, { recursive: true, mode: 0o700 });
  const tempPath = join(o.repository.uploadDir, `upload-${randomBytes(8).toString("hex")}.npk`);
  try {
    const file = await open(tempPath, "wx", 0o600);
    // The threads that check the package once it is here (the manifest parser; the image's
    // hashing in a keyed repository) start while the payload arrives, not after it.
    (await import("../../npk/manifest/worker.js")).prepareManifestParser();
    if (o.repository.key !== undefined)
      (await import("../../npk/verity-pool.js")).prepareVerityThreads(o.size);
    let pkg: InstalledPackage;
    try {
      const writer = new BlockWriter(file);
      await readPayload(o, (chunk) => writer.write(chunk));
      await writer.finish();
      // The checks read the file from the page cache while the kernel writes it out: hashing
      // (CPU) and fsync (disk) overlap instead of following each other. The install commits
      // only after both.
      const synced = file.sync();
      handledElsewhere(synced);
      pkg = await o.repository.load(tempPath, { verifyImage: true, signal: o.signal });
      await synced;
    } finally {
      await file.close();
    }
    // The package's file name (and so every path derived from its name and version) must be
    // one safe file name: refused here, before the install is committed (PathEscapeError).
    o.repository.packagePath(pkg.npk.manifest.name, pkg.npk.manifest.version);
    return { tempPath, pkg };
  } catch (e) {
    await rm(tempPath, { force: true });
    throw e;
  }
}

/** Bytes per writev(2) of an upload: socket reads (about 64 KiB each) are gathered into these. */
const WRITE_BLOCK = 2 ** 20;
/**
 * Chunks per writev(2) at most: a peer that trickles its payload a byte at a time makes one chunk
 * per byte, and a block of those would hold a million buffer objects.
 */
const WRITE_CHUNKS = 64;

/**
 * Writes a stream of chunks to a file in writes of about WRITE_BLOCK, one in flight while the next
 * gathers: the socket keeps being read while the disk writes, and an upload takes a few dozen
 * writev(2) calls per 50 MiB instead of one awaited write per socket read. The chunks are written
 * as received (the socket hands out a fresh buffer per read), not copied into a block first.
 *
 * INVARIANTS: `inFlight` is the only write in progress; `gathered` holds chunks not handed to a
 * write yet, `gatheredBytes` bytes in all (< WRITE_BLOCK bytes and < WRITE_CHUNKS chunks between
 * calls), so at most two blocks of at most WRITE_CHUNKS chunks each are held; a failed write
 * rejects `inFlight`, so the next flush or finish() throws it.
 */
class BlockWriter {
  private gathered: Buffer[] = [];
  private gatheredBytes = 0;
  private position = 0;
  private inFlight: Promise<void> = Promise.resolve();

  constructor(private readonly file: FileHandle) {}

  async write(chunk: Buffer): Promise<void> {
    this.gathered.push(chunk);
    this.gatheredBytes += chunk.length;
    if (this.gatheredBytes >= WRITE_BLOCK || this.gathered.length >= WRITE_CHUNKS) await this.flush();
  }

  /** Writes everything written so far; resolves when it is in the file. */
  async finish(): Promise<void> {
    await this.flush();
    await this.inFlight;
  }

  private async flush(): Promise<void> {
    await this.inFlight;
    if (this.gatheredBytes === 0) return;
    const written = writeAll(this.file, this.gathered, this.position);
    handledElsewhere(written);
    this.inFlight = written;
    this.position += this.gatheredBytes;
    this.gathered = [];
    this.gatheredBytes = 0;
  }
}

async function writeAll(file: FileHandle, buffers: Buffer[], position: number): Promise<void> {
  let { bytesWritten } = await file.writev(buffers, position);
  // A short write (rare for a regular file): the rest, from where it stopped.
  for (let i = 0; i < buffers.length; i++) {
    const buffer = buffers[i]!;
    if (bytesWritten >= buffer.length) {
      bytesWritten -= buffer.length;
      position += buffer.length;
      continue;
    }
    const rest = buffers.slice(i + 1);
    rest.unshift(buffer.subarray(bytesWritten));
    return writeAll(file, rest, position + bytesWritten);
  }
}

/**
 * Reads the payload into `sink`, giving up when no byte came for `streamTimeoutMs`.
 *
 * INVARIANTS: the reader cannot be interrupted while it waits for the socket, so a stall is a
 * race that the timer wins; the abandoned read is then cut off: later chunks are dropped
 * before they reach `sink` (whose file may be closed and removed by then) and its next turn
 * throws on the aborted signal, which nobody awaits any more.
 */
async function readPayload(o: UploadOptions, sink: (chunk: Buffer) => Promise<void>): Promise<void> {
  const stall = new AbortController();
  const signal = AbortSignal.any([o.signal, stall.signal]);
  const stalled = new Promise<never>((_, reject) => {
    stall.signal.addEventListener("abort", () => reject(stall.signal.reason as Error), { once: true });
  });
  handledElsewhere(stalled);
  // One timer for the whole payload, not one per chunk: when it fires it looks at when the last
  // chunk was done with and sleeps again for the rest. The sink's own time (a disk write) is not
  // the peer's pause.
  let lastDone = performance.now();
  let inSink = false;
  let timer: NodeJS.Timeout | undefined;
  const check = (): void => {
    const idle = performance.now() - lastDone;
    if (inSink || idle < o.streamTimeoutMs) {
      timer = setTimeout(check, inSink ? o.streamTimeoutMs : o.streamTimeoutMs - idle);
      return;
    }
    stall.abort(
      new UploadRejected(
        `install aborted: the package stream sent nothing for ${o.streamTimeoutMs} ms (npk_stream_timeout)`,
        true,
      ),
    );
  };
  timer = setTimeout(check, o.streamTimeoutMs);
  const reading = o.reader.readBytes(
    o.size,
    async (chunk) => {
      if (stall.signal.aborted) return;
      inSink = true;
      try {
        await sink(chunk);
      } finally {
        inSink = false;
        lastDone = performance.now();
      }
    },
    signal,
  );
  handledElsewhere(reading);
  try {
    await Promise.race([reading, stalled]);
  } finally {
    clearTimeout(timer);
  }
}
