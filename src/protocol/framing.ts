/**
 * NDJSON framing over a byte stream. A `LineReader` pulls chunks from an async iterable (a
 * socket) and hands out whole lines, or a counted run of raw bytes (Northstar's install
 * request is followed by exactly `size` raw bytes on the same stream).
 *
 * INVARIANTS: one consumer at a time (the console session awaits each call before the next);
 * at most `maxLineBytes` plus one chunk is buffered, so a peer that never sends a newline
 * cannot grow memory without bound. Chunks are kept as received and each byte is scanned for a
 * newline once, so a long line costs linear time; a line is copied once, when it is complete.
 * When an `account` is given, every change of the buffered size is reported to it, and an
 * unfinished line may only grow while the account grants it.
 */

export class LineTooLongError extends Error {
  override name = "LineTooLongError";
  constructor(readonly limit: number) {
    super(`line exceeds the maximum request size of ${limit} bytes`);
  }
}

/** The account refused to let an unfinished line grow (a budget shared by many readers). */
export class BufferRefusedError extends Error {
  override name = "BufferRefusedError";
  constructor(readonly bytes: number) {
    super(`buffer budget exhausted with ${bytes} bytes of an unfinished line`);
  }
}

/** Where a reader reports the bytes it buffers. */
export interface BufferAccount {
  /**
   * The reader now holds `bytes`. Returns false to refuse growth; a refusal is final for the
   * reader (it throws `BufferRefusedError`). Shrinking is always granted.
   */
  hold(bytes: number): boolean;
}

export class LineReader {
  private readonly source: AsyncIterator<Buffer>;
  /** Buffered input, oldest first; `size` bytes in all. */
  private chunks: Buffer[] = [];
  private size = 0;
  /** Leading buffered bytes already known to hold no newline. */
  private scanned = 0;
  private ended = false;

  constructor(
    source: AsyncIterable<Buffer>,
    private readonly maxLineBytes: number,
    private readonly account?: BufferAccount,
  ) {
    this.source = source[Symbol.asyncIterator]();
  }

  /** Bytes received but not handed out yet (more requests may be waiting in them). */
  get buffered(): number {
    return this.size;
  }

  private async pull(): Promise<boolean> {
    if (this.ended) return false;
    const next = await this.source.next();
    if (next.done) {
      this.ended = true;
      return false;
    }
    if (next.value.length > 0) {
      this.chunks.push(next.value);
      this.size += next.value.length;
    }
    return true;
  }

  /** Offset of the first buffered newline, or -1; scans only bytes not scanned before. */
  private findNewline(): number {
    let base = 0;
    for (const chunk of this.chunks) {
      if (this.scanned < base + chunk.length) {
        const at = chunk.indexOf(0x0a, Math.max(0, this.scanned - base));
        if (at >= 0) return base + at;
        this.scanned = base + chunk.length;
      }
      base += chunk.length;
    }
    return -1;
  }

  /** Removes and returns the first `n` buffered bytes (one copy at most). */
  private take(n: number): Buffer {
    const parts: Buffer[] = [];
    let left = n;
    while (left > 0) {
      const head = this.chunks[0]!;
      if (head.length <= left) {
        parts.push(head);
        this.chunks.shift();
        left -= head.length;
      } else {
        parts.push(head.subarray(0, left));
        this.chunks[0] = head.subarray(left);
        left = 0;
      }
    }
    this.size -= n;
    this.scanned = Math.max(0, this.scanned - n);
    this.account?.hold(this.size);
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts, n);
  }

  /** The next line without its "\n", or null at end of stream. A final unterminated line counts. */
  async nextLine(): Promise<string | null> {
    for (;;) {
      const nl = this.findNewline();
      if (nl >= 0) {
        if (nl > this.maxLineBytes) throw new LineTooLongError(this.maxLineBytes);
        const line = this.take(nl + 1);
        return line.subarray(0, nl).toString("utf8");
      }
      if (this.size > this.maxLineBytes) throw new LineTooLongError(this.maxLineBytes);
      if (this.account && !this.account.hold(this.size)) throw new BufferRefusedError(this.size);
      if (!(await this.pull())) {
        if (this.size === 0) return null;
        return this.take(this.size).toString("utf8");
      }
    }
  }

  /**
   * Passes exactly `size` raw bytes to `sink`, chunk by chunk, awaiting it (so a slow sink
   * slows the peer through the socket's back-pressure). Rejects if the stream ends early.
   */
  async readBytes(size: number, sink: (chunk: Buffer) => Promise<void>, signal?: AbortSignal): Promise<void> {
    let remaining = size;
    while (remaining > 0) {
      signal?.throwIfAborted();
      if (this.size === 0 && !(await this.pull())) {
        throw new Error(`stream ended with ${remaining} of ${size} bytes missing`);
      }
      const chunk = this.take(Math.min(remaining, this.chunks[0]?.length ?? 0));
      remaining -= chunk.length;
      await sink(chunk);
    }
  }

  /**
   * The next raw bytes, at most `max` of them (buffered ones first), or null at end of stream.
   * For a connection that left line framing (an exec stream, protocol/exec.ts).
   */
  async readChunk(max: number): Promise<Buffer | null> {
    if (this.size === 0 && !(await this.pull())) return null;
    if (this.size === 0) return Buffer.alloc(0);
    return this.take(Math.min(max, this.chunks[0]!.length));
  }

  /** Reads and drops `size` raw bytes (a refused payload), keeping the stream in step. */
  skipBytes(size: number, signal?: AbortSignal): Promise<void> {
    return this.readBytes(size, () => Promise.resolve(), signal);
  }
}
