/**
 * NDJSON framing over a byte stream. A `LineReader` pulls chunks from an async iterable (a
 * socket) and hands out whole lines, or a counted run of raw bytes (Northstar's install
 * request is followed by exactly `size` raw bytes on the same stream).
 *
 * INVARIANTS: one consumer at a time (the console session awaits each call before the next);
 * at most `maxLineBytes` plus one chunk is buffered, so a peer that never sends a newline
 * cannot grow memory without bound.
 */

export class LineTooLongError extends Error {
  override name = "LineTooLongError";
  constructor(readonly limit: number) {
    super(`line exceeds the maximum request size of ${limit} bytes`);
  }
}

export class LineReader {
  private readonly chunks: AsyncIterator<Buffer>;
  private buffer: Buffer = Buffer.alloc(0);
  private ended = false;

  constructor(
    source: AsyncIterable<Buffer>,
    private readonly maxLineBytes: number,
  ) {
    this.chunks = source[Symbol.asyncIterator]();
  }

  private async pull(): Promise<boolean> {
    if (this.ended) return false;
    const next = await this.chunks.next();
    if (next.done) {
      this.ended = true;
      return false;
    }
    this.buffer = this.buffer.length === 0 ? next.value : Buffer.concat([this.buffer, next.value]);
    return true;
  }

  /** The next line without its "\n", or null at end of stream. A final unterminated line counts. */
  async nextLine(): Promise<string | null> {
    let searchFrom = 0;
    for (;;) {
      const nl = this.buffer.indexOf(0x0a, searchFrom);
      if (nl >= 0) {
        if (nl > this.maxLineBytes) throw new LineTooLongError(this.maxLineBytes);
        const line = this.buffer.subarray(0, nl).toString("utf8");
        this.buffer = this.buffer.subarray(nl + 1);
        return line;
      }
      if (this.buffer.length > this.maxLineBytes) throw new LineTooLongError(this.maxLineBytes);
      searchFrom = this.buffer.length;
      if (!(await this.pull())) {
        if (this.buffer.length === 0) return null;
        const line = this.buffer.toString("utf8");
        this.buffer = Buffer.alloc(0);
        return line;
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
      if (this.buffer.length === 0 && !(await this.pull())) {
        throw new Error(`stream ended with ${remaining} of ${size} bytes missing`);
      }
      const take = Math.min(remaining, this.buffer.length);
      const chunk = this.buffer.subarray(0, take);
      this.buffer = this.buffer.subarray(take);
      remaining -= take;
      await sink(chunk);
    }
  }

  /** Reads and drops `size` raw bytes (a refused payload), keeping the stream in step. */
  skipBytes(size: number, signal?: AbortSignal): Promise<void> {
    return this.readBytes(size, () => Promise.resolve(), signal);
  }
}
