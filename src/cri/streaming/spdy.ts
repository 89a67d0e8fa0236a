/**
 * SPDY/3.1 framing (the draft "SPDY Protocol - Draft 3.1"), the transport under Kubernetes'
 * streaming protocols (apimachinery's `httpstream/spdy`, moby/spdystream on the Go side). Pure:
 * bytes in, frames out, and back; the session (session.ts) owns sockets, streams and zlib.
 *
 * Wire format (all integers big-endian):
 *
 *   control frame   |1| version:15 (=3) | type:16 | flags:8 | length:24 | payload
 *   data frame      |0| stream-id:31             | flags:8 | length:24 | payload
 *
 *   SYN_STREAM (1)    stream-id:31 assoc-id:31 priority:3 unused:5 slot:8  header-block   flags FIN=1 UNIDIRECTIONAL=2
 *   SYN_REPLY (2)     stream-id:31 header-block                                           flags FIN=1
 *   RST_STREAM (3)    stream-id:31 status:32
 *   SETTINGS (4)      count:32, then count x (flags:8 id:24 value:32)
 *   PING (6)          id:32
 *   GOAWAY (7)        last-good-stream-id:31 status:32
 *   HEADERS (8)       stream-id:31 header-block                                           flags FIN=1
 *   WINDOW_UPDATE (9) stream-id:31 delta:31
 *   data              flags FIN=1
 *
 *   header block (after zlib inflation): count:32, then count x (name-len:32 name value-len:32
 *   value); names are lower case; several values of one name are joined by NUL.
 *
 * Header blocks are compressed with one zlib stream per direction per connection, primed with
 * the SPDY/3 dictionary, each block ending on a sync flush. Inflating needs that state, so it
 * is done by the session (HeaderInflater below); deflating is done here, synchronously, with
 * "stored" deflate blocks, each block followed by the empty stored block a sync flush ends with:
 * a valid zlib stream that any inflater reads, whose output is the input plus 10 bytes. Skiff only ever sends one empty header block per stream (the
 * SYN_REPLY), so compressing it would buy nothing, and no state can go wrong.
 *
 * Flow control (WINDOW_UPDATE) is SPDY/3.1's, but moby/spdystream, the Go side of every
 * Kubernetes client, neither sends nor obeys it; Skiff parses it and ignores it too, and bounds
 * memory by back-pressure instead (the session stops reading the socket).
 *
 * Limits: the decoder refuses any frame whose length exceeds its limit before buffering its
 * payload (FrameError); header blocks are refused past their own limits (compressed here,
 * inflated in HeaderInflater, pairs and name/value sizes in parseHeaderBlock).
 */
import { constants as zlibConstants, createInflate, type Inflate } from "node:zlib";

export const SPDY_VERSION = 3;

export const FrameType = {
  SYN_STREAM: 1,
  SYN_REPLY: 2,
  RST_STREAM: 3,
  SETTINGS: 4,
  PING: 6,
  GOAWAY: 7,
  HEADERS: 8,
  WINDOW_UPDATE: 9,
} as const;

export const FLAG_FIN = 0x01;
export const FLAG_UNIDIRECTIONAL = 0x02;

/** RST_STREAM status codes. */
export const RstStatus = {
  PROTOCOL_ERROR: 1,
  INVALID_STREAM: 2,
  REFUSED_STREAM: 3,
  UNSUPPORTED_VERSION: 4,
  CANCEL: 5,
  INTERNAL_ERROR: 6,
  FLOW_CONTROL_ERROR: 7,
  STREAM_IN_USE: 8,
  STREAM_ALREADY_CLOSED: 9,
  FRAME_TOO_LARGE: 11,
} as const;

/** GOAWAY status codes. */
export const GoAwayStatus = { OK: 0, PROTOCOL_ERROR: 1, INTERNAL_ERROR: 2 } as const;

/** Headers as SPDY carries them: lower-case names, each with one or more values. */
export type Headers = Map<string, string[]>;

export type Frame =
  | { type: "data"; streamId: number; fin: boolean; data: Buffer }
  | {
      type: "syn_stream";
      streamId: number;
      associatedId: number;
      priority: number;
      fin: boolean;
      unidirectional: boolean;
      /** Compressed; the session inflates it (HeaderInflater). */
      headerBlock: Buffer;
    }
  | { type: "syn_reply"; streamId: number; fin: boolean; headerBlock: Buffer }
  | { type: "headers"; streamId: number; fin: boolean; headerBlock: Buffer }
  | { type: "rst_stream"; streamId: number; status: number }
  | { type: "settings"; entries: { flags: number; id: number; value: number }[] }
  | { type: "ping"; id: number }
  | { type: "goaway"; lastGoodStreamId: number; status: number }
  | { type: "window_update"; streamId: number; delta: number }
  /** A control frame of a type SPDY/3.1 does not define (the draft: ignore it). */
  | { type: "unknown"; frameType: number };

export interface FrameLimits {
  /** Largest payload of a data frame. */
  maxDataPayload: number;
  /** Largest compressed header block of a SYN_STREAM/SYN_REPLY/HEADERS. */
  maxHeaderBlock: number;
  /** Largest SETTINGS entry count. */
  maxSettings: number;
}

export const DEFAULT_FRAME_LIMITS: FrameLimits = {
  maxDataPayload: 256 * 1024,
  maxHeaderBlock: 16 * 1024,
  maxSettings: 16,
};

/** Limits of an inflated header block. */
export interface HeaderLimits {
  maxInflated: number;
  maxPairs: number;
}

export const DEFAULT_HEADER_LIMITS: HeaderLimits = { maxInflated: 64 * 1024, maxPairs: 64 };

/** A frame (or header block) that breaks the protocol or a limit: the session ends. */
export class FrameError extends Error {
  override name = "FrameError";
  constructor(
    message: string,
    /** RST_STREAM / GOAWAY status to answer with. */
    readonly status: number = GoAwayStatus.PROTOCOL_ERROR,
  ) {
    super(message);
  }
}

const HEADER_BYTES = 8;
const STREAM_ID_MASK = 0x7fffffff;

/**
 * Incremental frame decoder: `push` bytes, then `next()` until undefined. A frame's length is
 * checked against the limits from its 8-byte header, before any payload is kept.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;

  constructor(private readonly limits: FrameLimits = DEFAULT_FRAME_LIMITS) {}

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
  }

  /** Bytes received and not yet returned as frames. */
  get pending(): number {
    return this.buffered;
  }

  next(): Frame | undefined {
    if (this.buffered < HEADER_BYTES) return undefined;
    const head = this.peek(HEADER_BYTES);
    const length = head.readUIntBE(5, 3);
    const control = (head[0]! & 0x80) !== 0;
    const flags = head[4]!;
    if (control) {
      const version = head.readUInt16BE(0) & 0x7fff;
      const type = head.readUInt16BE(2);
      if (version !== SPDY_VERSION)
        throw new FrameError(
          `SPDY version ${version} is not supported (3 only)`,
          GoAwayStatus.PROTOCOL_ERROR,
        );
      const max = controlLimit(type, this.limits);
      if (length > max)
        throw new FrameError(`control frame type ${type}: ${length} bytes exceed the limit of ${max}`);
      if (this.buffered < HEADER_BYTES + length) return undefined;
      const payload = this.take(HEADER_BYTES + length).subarray(HEADER_BYTES);
      return parseControl(type, flags, payload);
    }
    if (length > this.limits.maxDataPayload)
      throw new FrameError(
        `data frame: ${length} bytes exceed the limit of ${this.limits.maxDataPayload}`,
        RstStatus.FRAME_TOO_LARGE,
      );
    if (this.buffered < HEADER_BYTES + length) return undefined;
    const streamId = head.readUInt32BE(0) & STREAM_ID_MASK;
    const data = this.take(HEADER_BYTES + length).subarray(HEADER_BYTES);
    return { type: "data", streamId, fin: (flags & FLAG_FIN) !== 0, data };
  }

  private peek(n: number): Buffer {
    if (this.chunks[0]!.length < n) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0]!.subarray(0, n);
  }

  private take(n: number): Buffer {
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    const frame = Buffer.from(all.subarray(0, n));
    const rest = all.subarray(n);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.buffered -= n;
    return frame;
  }
}

/** The largest payload a control frame of `type` may have. */
function controlLimit(type: number, limits: FrameLimits): number {
  switch (type) {
    case FrameType.SYN_STREAM:
      return 10 + limits.maxHeaderBlock;
    case FrameType.SYN_REPLY:
    case FrameType.HEADERS:
      return 4 + limits.maxHeaderBlock;
    case FrameType.SETTINGS:
      return 4 + 8 * limits.maxSettings;
    case FrameType.RST_STREAM:
    case FrameType.GOAWAY:
    case FrameType.WINDOW_UPDATE:
      return 8;
    case FrameType.PING:
      return 4;
    default:
      // Unknown types are skipped, but not at any size.
      return 1024;
  }
}

function need(payload: Buffer, n: number, what: string): void {
  if (payload.length < n) throw new FrameError(`${what}: ${payload.length} bytes, expected at least ${n}`);
}

function exact(payload: Buffer, n: number, what: string): void {
  if (payload.length !== n) throw new FrameError(`${what}: ${payload.length} bytes, expected ${n}`);
}

function parseControl(type: number, flags: number, p: Buffer): Frame {
  const fin = (flags & FLAG_FIN) !== 0;
  switch (type) {
    case FrameType.SYN_STREAM:
      need(p, 10, "SYN_STREAM");
      return {
        type: "syn_stream",
        streamId: p.readUInt32BE(0) & STREAM_ID_MASK,
        associatedId: p.readUInt32BE(4) & STREAM_ID_MASK,
        priority: p[8]! >> 5,
        fin,
        unidirectional: (flags & FLAG_UNIDIRECTIONAL) !== 0,
        headerBlock: p.subarray(10),
      };
    case FrameType.SYN_REPLY:
      need(p, 4, "SYN_REPLY");
      return {
        type: "syn_reply",
        streamId: p.readUInt32BE(0) & STREAM_ID_MASK,
        fin,
        headerBlock: p.subarray(4),
      };
    case FrameType.HEADERS:
      need(p, 4, "HEADERS");
      return {
        type: "headers",
        streamId: p.readUInt32BE(0) & STREAM_ID_MASK,
        fin,
        headerBlock: p.subarray(4),
      };
    case FrameType.RST_STREAM:
      exact(p, 8, "RST_STREAM");
      return { type: "rst_stream", streamId: p.readUInt32BE(0) & STREAM_ID_MASK, status: p.readUInt32BE(4) };
    case FrameType.SETTINGS: {
      need(p, 4, "SETTINGS");
      const count = p.readUInt32BE(0);
      if (p.length !== 4 + 8 * count) throw new FrameError(`SETTINGS: ${count} entries in ${p.length} bytes`);
      const entries = [];
      for (let i = 0; i < count; i++) {
        const at = 4 + 8 * i;
        entries.push({ flags: p[at]!, id: p.readUIntBE(at + 1, 3), value: p.readUInt32BE(at + 4) });
      }
      return { type: "settings", entries };
    }
    case FrameType.PING:
      exact(p, 4, "PING");
      return { type: "ping", id: p.readUInt32BE(0) };
    case FrameType.GOAWAY:
      exact(p, 8, "GOAWAY");
      return {
        type: "goaway",
        lastGoodStreamId: p.readUInt32BE(0) & STREAM_ID_MASK,
        status: p.readUInt32BE(4),
      };
    case FrameType.WINDOW_UPDATE:
      exact(p, 8, "WINDOW_UPDATE");
      return {
        type: "window_update",
        streamId: p.readUInt32BE(0) & STREAM_ID_MASK,
        delta: p.readUInt32BE(4) & STREAM_ID_MASK,
      };
    default:
      return { type: "unknown", frameType: type };
  }
}

function controlFrame(type: number, flags: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(HEADER_BYTES);
  head.writeUInt16BE(0x8000 | SPDY_VERSION, 0);
  head.writeUInt16BE(type, 2);
  head[4] = flags;
  head.writeUIntBE(payload.length, 5, 3);
  return Buffer.concat([head, payload]);
}

function u32s(...values: number[]): Buffer {
  const b = Buffer.alloc(4 * values.length);
  values.forEach((v, i) => b.writeUInt32BE(v >>> 0, 4 * i));
  return b;
}

/** Encoders; header blocks are passed compressed (HeaderDeflater or the session's zlib). */
export const encode = {
  data(streamId: number, data: Buffer, fin = false): Buffer {
    if (data.length > 0xffffff) throw new RangeError("data frame over 16 MiB");
    const head = Buffer.alloc(HEADER_BYTES);
    head.writeUInt32BE(streamId & STREAM_ID_MASK, 0);
    head[4] = fin ? FLAG_FIN : 0;
    head.writeUIntBE(data.length, 5, 3);
    return Buffer.concat([head, data]);
  },
  synStream(
    streamId: number,
    headerBlock: Buffer,
    o: { fin?: boolean; unidirectional?: boolean; priority?: number; associatedId?: number } = {},
  ): Buffer {
    const fixed = Buffer.alloc(10);
    fixed.writeUInt32BE(streamId & STREAM_ID_MASK, 0);
    fixed.writeUInt32BE((o.associatedId ?? 0) & STREAM_ID_MASK, 4);
    fixed[8] = ((o.priority ?? 0) & 7) << 5;
    const flags = (o.fin === true ? FLAG_FIN : 0) | (o.unidirectional === true ? FLAG_UNIDIRECTIONAL : 0);
    return controlFrame(FrameType.SYN_STREAM, flags, Buffer.concat([fixed, headerBlock]));
  },
  synReply(streamId: number, headerBlock: Buffer, fin = false): Buffer {
    return controlFrame(
      FrameType.SYN_REPLY,
      fin ? FLAG_FIN : 0,
      Buffer.concat([u32s(streamId), headerBlock]),
    );
  },
  rstStream(streamId: number, status: number): Buffer {
    return controlFrame(FrameType.RST_STREAM, 0, u32s(streamId, status));
  },
  settings(entries: { flags: number; id: number; value: number }[]): Buffer {
    const body = Buffer.alloc(4 + 8 * entries.length);
    body.writeUInt32BE(entries.length, 0);
    entries.forEach((e, i) => {
      body[4 + 8 * i] = e.flags;
      body.writeUIntBE(e.id, 5 + 8 * i, 3);
      body.writeUInt32BE(e.value, 8 + 8 * i);
    });
    return controlFrame(FrameType.SETTINGS, 0, body);
  },
  ping(id: number): Buffer {
    return controlFrame(FrameType.PING, 0, u32s(id));
  },
  goaway(lastGoodStreamId: number, status: number): Buffer {
    return controlFrame(FrameType.GOAWAY, 0, u32s(lastGoodStreamId, status));
  },
  windowUpdate(streamId: number, delta: number): Buffer {
    return controlFrame(FrameType.WINDOW_UPDATE, 0, u32s(streamId, delta));
  },
  /** Any control frame, for tests that send what the protocol does not define. */
  raw(type: number, flags: number, payload: Buffer): Buffer {
    return controlFrame(type, flags, payload);
  },
};

/** The uncompressed header block of `headers` (names lower-cased, values NUL-joined). */
export function serializeHeaderBlock(headers: Headers): Buffer {
  const parts: Buffer[] = [u32s(headers.size)];
  for (const [name, values] of headers) {
    const n = Buffer.from(name.toLowerCase());
    const v = Buffer.from(values.join("\0"));
    parts.push(u32s(n.length), n, u32s(v.length), v);
  }
  return Buffer.concat(parts);
}

/** Parses an inflated header block; refuses more than `maxPairs` pairs or a truncated block. */
export function parseHeaderBlock(block: Buffer, limits: HeaderLimits = DEFAULT_HEADER_LIMITS): Headers {
  if (block.length < 4) throw new FrameError("header block: truncated count");
  const count = block.readUInt32BE(0);
  if (count > limits.maxPairs)
    throw new FrameError(`header block: ${count} pairs exceed the limit of ${limits.maxPairs}`);
  const headers: Headers = new Map();
  let at = 4;
  const field = (what: string): string => {
    if (at + 4 > block.length) throw new FrameError(`header block: truncated ${what} length`);
    const len = block.readUInt32BE(at);
    at += 4;
    if (at + len > block.length) throw new FrameError(`header block: truncated ${what}`);
    const text = block.toString("latin1", at, at + len);
    at += len;
    return text;
  };
  for (let i = 0; i < count; i++) {
    const name = field("name");
    const value = field("value");
    if (name === "") throw new FrameError("header block: empty header name");
    if (name !== name.toLowerCase())
      throw new FrameError(`header block: name ${JSON.stringify(name)} is not lower case`);
    if (headers.has(name)) throw new FrameError(`header block: duplicate header ${JSON.stringify(name)}`);
    headers.set(name, value.split("\0"));
  }
  if (at !== block.length) throw new FrameError("header block: trailing bytes");
  return headers;
}

/** The first value of header `name`, or "" (Go's http.Header.Get). */
export function headerValue(headers: Headers, name: string): string {
  return headers.get(name)?.[0] ?? "";
}

/**
 * The SPDY/3 header compression dictionary (the draft, section 2.6.10.1): 65 length-prefixed
 * words, then a run of status codes, reason phrases, dates and media types.
 */
const DICTIONARY_WORDS = [
  "options", "head", "post", "put", "delete", "trace", "accept", "accept-charset", "accept-encoding",
  "accept-language", "accept-ranges", "age", "allow", "authorization", "cache-control", "connection",
  "content-base", "content-encoding", "content-language", "content-length", "content-location",
  "content-md5", "content-range", "content-type", "date", "etag", "expect", "expires", "from", "host",
  "if-match", "if-modified-since", "if-none-match", "if-range", "if-unmodified-since", "last-modified",
  "location", "max-forwards", "pragma", "proxy-authenticate", "proxy-authorization", "range", "referer",
  "retry-after", "server", "te", "trailer", "transfer-encoding", "upgrade", "user-agent", "vary", "via",
  "warning", "www-authenticate", "method", "get", "status", "200 OK", "version", "HTTP/1.1", "url",
  "public", "set-cookie", "keep-alive", "origin",
]; // prettier-ignore
const DICTIONARY_TAIL =
  "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505" +
  "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request" +
  "401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented" +
  "503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 " +
  "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif," +
  "application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age=" +
  "gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.";

export const SPDY3_DICTIONARY: Buffer = Buffer.concat([
  ...DICTIONARY_WORDS.flatMap((w) => [u32s(w.length), Buffer.from(w, "latin1")]),
  Buffer.from(DICTIONARY_TAIL, "latin1"),
]);

/** Adler-32 (RFC 1950), the dictionary id of a zlib header. */
export function adler32(data: Buffer): number {
  let a = 1;
  let b = 0;
  for (let i = 0; i < data.length; i += 3800) {
    const end = Math.min(i + 3800, data.length);
    for (let j = i; j < end; j++) {
      a += data[j]!;
      b += a;
    }
    a %= 65521;
    b %= 65521;
  }
  return ((b << 16) | a) >>> 0;
}

/**
 * The sending side of one connection's header compression: a zlib stream (header with the
 * dictionary's id, FDICT set) whose every block is a stored deflate block, each one byte-aligned
 * like a sync flush. Stateless apart from "the zlib header was sent".
 */
export class HeaderDeflater {
  private started = false;

  deflate(block: Buffer): Buffer {
    const parts: Buffer[] = [];
    if (!this.started) {
      this.started = true;
      // CMF 0x78 (deflate, 32 KiB window), FLG 0xbb (FDICT, check bits: 0x78bb % 31 == 0).
      parts.push(Buffer.from([0x78, 0xbb]), u32s(adler32(SPDY3_DICTIONARY)));
    }
    for (let at = 0; at < block.length; at += 0xffff)
      parts.push(storedBlock(block.subarray(at, at + 0xffff)));
    // The empty stored block that ends a sync flush: inflaters (Go's flate among them) hand out
    // a stored block's bytes only when the next block begins.
    parts.push(storedBlock(Buffer.alloc(0)));
    return Buffer.concat(parts);
  }
}

/** A non-final stored deflate block: BFINAL=0, BTYPE=00, padding to the byte, LEN, NLEN, data. */
function storedBlock(piece: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt16LE(piece.length, 1);
  head.writeUInt16LE(~piece.length & 0xffff, 3);
  return Buffer.concat([head, piece]);
}

/**
 * The receiving side of one connection's header compression: one zlib inflate stream primed
 * with the SPDY/3 dictionary; each header block is written and sync-flushed, and what comes out
 * is the uncompressed block. Output past `maxInflated` destroys the stream and rejects (a
 * "zip bomb" stops at the limit plus one zlib chunk); corrupt input rejects. After a rejection
 * the inflater is unusable, as is the connection (its compression state is lost).
 *
 * INVARIANTS: blocks are inflated one at a time, in frame order (the caller awaits each).
 */
export class HeaderInflater {
  private readonly z: Inflate;
  private failed: Error | undefined;

  constructor(private readonly limits: HeaderLimits = DEFAULT_HEADER_LIMITS) {
    this.z = createInflate({ dictionary: SPDY3_DICTIONARY, chunkSize: 16 * 1024 });
    this.z.on("error", (e) => (this.failed ??= e));
  }

  inflate(block: Buffer): Promise<Buffer> {
    if (this.failed !== undefined)
      return Promise.reject(new FrameError(`header compression: ${this.failed.message}`));
    return new Promise((resolve, reject) => {
      const out: Buffer[] = [];
      let size = 0;
      const cleanup = (): void => {
        this.z.off("data", onData);
        this.z.off("error", onError);
      };
      const onData = (chunk: Buffer): void => {
        size += chunk.length;
        if (size > this.limits.maxInflated) {
          cleanup();
          this.failed = new Error("header block too large");
          this.z.destroy();
          reject(new FrameError(`header block: over ${this.limits.maxInflated} bytes once inflated`));
          return;
        }
        out.push(chunk);
      };
      const onError = (e: Error): void => {
        cleanup();
        reject(new FrameError(`header compression: ${e.message}`));
      };
      this.z.on("data", onData);
      this.z.on("error", onError);
      this.z.write(block);
      this.z.flush(zlibConstants.Z_SYNC_FLUSH, () => {
        if (this.failed !== undefined) return; // rejected already
        cleanup();
        resolve(Buffer.concat(out));
      });
    });
  }

  close(): void {
    this.z.destroy();
  }
}
