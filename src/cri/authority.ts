/**
 * The CRI socket's HTTP/2 `:authority` fix-up, between each client connection and the gRPC
 * server (docs/cri.md, "The `:authority` of a Unix socket").
 *
 * Why: grpc-go clients that dial a Unix socket by its path (kubelets before k8s#123463, crictl
 * v1.26, k3s of that age) send the path, e.g. `/run/skiff/cri.sock`, as `:authority`. nghttp2,
 * under Node's http2 and so under @grpc/grpc-js, refuses an authority with a `/` (RFC 3986) and
 * resets every stream with PROTOCOL_ERROR; Node offers no option to relax it. So every
 * connection goes through `AuthorityFront`, which rewrites the `:authority` field of each request
 * header block to `localhost` (what grpc-js and newer kubelets send for a Unix socket) before the
 * server's HTTP/2 layer reads it. Nothing else is changed; the server's own frames pass through.
 *
 * HPACK (RFC 7541) makes a rewrite of one field a question of table state: both ends keep a
 * dynamic table whose evictions depend on the byte size of each entry, so a value of another
 * length would desynchronise them. Hence the second change: the server's first SETTINGS frame is
 * given SETTINGS_HEADER_TABLE_SIZE = 0 on its way to the client, so the client's encoder keeps no
 * dynamic table (grpc-go applies it before its first request: a gRPC client waits for the
 * server's SETTINGS), and a rewritten field never sits in a table at all. Header fields are walked
 * without decoding their strings (no Huffman): the authority is recognised by its name's static
 * index (1) or its literal name, and its value replaced whatever it was.
 *
 * Limits: a header block (HEADERS plus CONTINUATIONs) over MAX_HEADER_BLOCK bytes, or one
 * interrupted by another frame (RFC 7540 forbids it), ends the connection; a block that does not
 * parse as HPACK is forwarded unchanged, for the server's HTTP/2 layer to refuse. Other frames
 * stream through as they arrive, whatever their size (the server's HTTP/2 layer bounds them).
 */
import { Duplex } from "node:stream";
import type { Socket } from "node:net";

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");
const FRAME_HEADER = 9;
const TYPE_HEADERS = 0x1;
const TYPE_SETTINGS = 0x4;
const TYPE_CONTINUATION = 0x9;
const FLAG_END_STREAM = 0x1;
const FLAG_ACK = 0x1;
const FLAG_END_HEADERS = 0x4;
const FLAG_PADDED = 0x8;
const FLAG_PRIORITY = 0x20;
const SETTINGS_HEADER_TABLE_SIZE = 0x1;
/** HTTP/2's default SETTINGS_MAX_FRAME_SIZE, which grpc-js does not raise: frames we emit fit it. */
const DEFAULT_MAX_FRAME = 16_384;
const MAX_HEADER_BLOCK = 256 * 1024;
/** HPACK's static index of `:authority`. */
const AUTHORITY_INDEX = 1;
const AUTHORITY_NAME = Buffer.from(":authority", "latin1");
const LOCALHOST = Buffer.from("localhost", "latin1");

export class AuthorityFrontError extends Error {
  override name = "AuthorityFrontError";
}

/** An HPACK integer with an `n`-bit prefix at `at`: its value and the offset after it. */
function readInteger(block: Buffer, at: number, n: number): [number, number] {
  const mask = (1 << n) - 1;
  if (at >= block.length) throw new AuthorityFrontError("truncated integer");
  let value = block[at]! & mask;
  let i = at + 1;
  if (value < mask) return [value, i];
  for (let shift = 0; ; shift += 7) {
    if (i >= block.length || shift > 21) throw new AuthorityFrontError("bad integer");
    const byte = block[i++]!;
    value += (byte & 0x7f) * 2 ** shift;
    if ((byte & 0x80) === 0) return [value, i];
  }
}

/** An HPACK integer with an `n`-bit prefix, the prefix's other bits `high`. */
function writeInteger(value: number, n: number, high: number): Buffer {
  const mask = (1 << n) - 1;
  if (value < mask) return Buffer.from([high | value]);
  const bytes = [high | mask];
  let rest = value - mask;
  while (rest >= 0x80) {
    bytes.push(rest % 0x80 | 0x80);
    rest = Math.floor(rest / 0x80);
  }
  bytes.push(rest);
  return Buffer.from(bytes);
}

/** A string literal at `at`: whether Huffman-coded, its bytes' span, and the offset after it. */
function readString(block: Buffer, at: number): { huffman: boolean; start: number; end: number } {
  if (at >= block.length) throw new AuthorityFrontError("truncated string");
  const huffman = (block[at]! & 0x80) !== 0;
  const [length, start] = readInteger(block, at, 7);
  const end = start + length;
  if (end > block.length) throw new AuthorityFrontError("truncated string");
  return { huffman, start, end };
}

/**
 * The header block with every `:authority` field's value replaced by `localhost` (same
 * representation: indexing kind kept, name by static index). Throws AuthorityFrontError when
 * the block is not HPACK.
 */
export function rewriteAuthority(block: Buffer): Buffer {
  const out: Buffer[] = [];
  let i = 0;
  while (i < block.length) {
    const first = block[i]!;
    const start = i;
    if ((first & 0x80) !== 0) {
      i = readInteger(block, i, 7)[1]; // indexed field
      out.push(block.subarray(start, i));
      continue;
    }
    if ((first & 0xe0) === 0x20) {
      i = readInteger(block, i, 5)[1]; // dynamic table size update
      out.push(block.subarray(start, i));
      continue;
    }
    // A literal: with incremental indexing (01, 6-bit name index), or without / never indexed
    // (0000 / 0001, 4-bit name index).
    const prefix = (first & 0xc0) === 0x40 ? 6 : 4;
    const high = prefix === 6 ? 0x40 : first & 0xf0;
    const [nameIndex, afterIndex] = readInteger(block, i, prefix);
    let isAuthority = nameIndex === AUTHORITY_INDEX;
    i = afterIndex;
    if (nameIndex === 0) {
      const name = readString(block, i);
      isAuthority = !name.huffman && block.subarray(name.start, name.end).equals(AUTHORITY_NAME);
      i = name.end;
    }
    i = readString(block, i).end;
    if (!isAuthority) {
      out.push(block.subarray(start, i));
      continue;
    }
    out.push(writeInteger(AUTHORITY_INDEX, prefix, high), writeInteger(LOCALHOST.length, 7, 0), LOCALHOST);
  }
  return Buffer.concat(out);
}

function frameHeader(length: number, type: number, flags: number, stream: number): Buffer {
  const header = Buffer.alloc(FRAME_HEADER);
  header.writeUIntBE(length, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(stream, 5);
  return header;
}

/** Frames one header block: HEADERS (with `priority` and END_STREAM as given), then CONTINUATIONs. */
function headerFrames(
  block: Buffer,
  stream: number,
  endStream: boolean,
  priority: Buffer | undefined,
): Buffer[] {
  const frames: Buffer[] = [];
  const firstRoom = DEFAULT_MAX_FRAME - (priority?.length ?? 0);
  let offset = 0;
  let first = true;
  do {
    const room = first ? firstRoom : DEFAULT_MAX_FRAME;
    const piece = block.subarray(offset, offset + room);
    offset += piece.length;
    const last = offset >= block.length;
    const flags =
      (last ? FLAG_END_HEADERS : 0) |
      (first && endStream ? FLAG_END_STREAM : 0) |
      (first && priority ? FLAG_PRIORITY : 0);
    const payload = first && priority ? Buffer.concat([priority, piece]) : piece;
    frames.push(
      frameHeader(payload.length, first ? TYPE_HEADERS : TYPE_CONTINUATION, flags, stream),
      payload,
    );
    first = false;
  } while (offset < block.length);
  return frames;
}

/**
 * Client → server: request header blocks with `:authority` rewritten, everything else as it is.
 * A streaming state machine: the preface and every frame but HEADERS and CONTINUATION pass through
 * as their bytes arrive, so nothing but a header block (at most MAX_HEADER_BLOCK) and a frame
 * header (9 bytes) is ever held, and bytes are copied once however a client chunks them.
 */
export class RequestRewriter {
  private prefaceLeft = PREFACE.length;
  /** The frame header being read (up to 9 bytes). */
  private header: Buffer[] = [];
  private headerBytes = 0;
  /** The frame whose payload is being read: passed through, or kept for its header block. */
  private frame:
    | { keep: boolean; type: number; flags: number; stream: number; left: number; parts: Buffer[] }
    | undefined;
  /** A header block waiting for its END_HEADERS. */
  private block:
    | { stream: number; endStream: boolean; priority?: Buffer; parts: Buffer[]; size: number }
    | undefined;

  /** The bytes to hand on for `chunk`; throws AuthorityFrontError for a connection to end. */
  push(chunk: Buffer): Buffer {
    const out: Buffer[] = [];
    let at = 0;
    if (this.prefaceLeft > 0) {
      const n = Math.min(this.prefaceLeft, chunk.length);
      out.push(chunk.subarray(0, n));
      this.prefaceLeft -= n;
      at = n;
    }
    while (at < chunk.length) {
      if (this.frame === undefined) {
        const n = Math.min(FRAME_HEADER - this.headerBytes, chunk.length - at);
        this.header.push(chunk.subarray(at, at + n));
        this.headerBytes += n;
        at += n;
        if (this.headerBytes < FRAME_HEADER) break;
        const header = Buffer.concat(this.header);
        this.header = [];
        this.headerBytes = 0;
        this.begin(header, out);
        if (this.frame === undefined) continue; // an empty frame, done
      }
      const frame = this.frame;
      const n = Math.min(frame.left, chunk.length - at);
      const piece = chunk.subarray(at, at + n);
      at += n;
      frame.left -= n;
      if (frame.keep) frame.parts.push(piece);
      else out.push(piece);
      if (frame.left === 0) {
        this.frame = undefined;
        if (frame.keep) this.end(frame.type, frame.flags, frame.stream, Buffer.concat(frame.parts), out);
      }
    }
    return Buffer.concat(out);
  }

  /** A frame header read: a frame to pass through (its header goes out now) or one to keep. */
  private begin(header: Buffer, out: Buffer[]): void {
    const length = header.readUIntBE(0, 3);
    const type = header[3]!;
    const flags = header[4]!;
    const stream = header.readUInt32BE(5) & 0x7fffffff;
    // Inside a block only its CONTINUATIONs may come (a second HEADERS interrupts it too).
    const keep =
      this.block === undefined
        ? type === TYPE_HEADERS
        : type === TYPE_CONTINUATION && this.block.stream === stream;
    if (this.block !== undefined && !keep) {
      throw new AuthorityFrontError("a header block interrupted by another frame");
    }
    if (keep && (this.block?.size ?? 0) + length > MAX_HEADER_BLOCK) {
      throw new AuthorityFrontError(`header block over ${MAX_HEADER_BLOCK} bytes`);
    }
    if (!keep) out.push(header);
    if (length === 0 && !keep) return;
    this.frame = { keep, type, flags, stream, left: length, parts: [] };
    if (length === 0) {
      this.frame = undefined;
      this.end(type, flags, stream, Buffer.alloc(0), out);
    }
  }

  /** A HEADERS or CONTINUATION payload read whole: the block grows, or is rewritten and framed. */
  private end(type: number, flags: number, stream: number, payload: Buffer, out: Buffer[]): void {
    if (type === TYPE_HEADERS) {
      let fragment = payload;
      if ((flags & FLAG_PADDED) !== 0) {
        const pad = fragment[0] ?? 0;
        if (1 + pad > fragment.length) throw new AuthorityFrontError("padding longer than the frame");
        fragment = fragment.subarray(1, fragment.length - pad);
      }
      let priority: Buffer | undefined;
      if ((flags & FLAG_PRIORITY) !== 0) {
        if (fragment.length < 5) throw new AuthorityFrontError("HEADERS too short for its priority");
        priority = fragment.subarray(0, 5);
        fragment = fragment.subarray(5);
      }
      this.block = {
        stream,
        endStream: (flags & FLAG_END_STREAM) !== 0,
        ...(priority === undefined ? {} : { priority }),
        parts: [fragment],
        size: fragment.length,
      };
    } else {
      this.block!.parts.push(payload);
      this.block!.size += payload.length;
    }
    if ((flags & FLAG_END_HEADERS) === 0) return;
    const block = this.block!;
    this.block = undefined;
    const whole = Buffer.concat(block.parts);
    let rewritten: Buffer;
    try {
      rewritten = rewriteAuthority(whole);
    } catch (e) {
      if (!(e instanceof AuthorityFrontError)) throw e;
      rewritten = whole; // not HPACK: the server's HTTP/2 layer answers it
    }
    out.push(...headerFrames(rewritten, block.stream, block.endStream, block.priority));
  }
}

/** Reads whole frames from the server's byte stream (its first SETTINGS is small and comes first). */
class FrameReader {
  private pending: Buffer = Buffer.alloc(0);

  /** The whole frames in `chunk` (plus what was pending). */
  feed(chunk: Buffer): Buffer[] {
    let data = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const frames: Buffer[] = [];
    while (data.length >= FRAME_HEADER) {
      const size = FRAME_HEADER + data.readUIntBE(0, 3);
      if (data.length < size) break;
      frames.push(data.subarray(0, size));
      data = data.subarray(size);
    }
    this.pending = Buffer.from(data);
    return frames;
  }

  /** The bytes read that do not make a whole frame yet; the reader forgets them. */
  drain(): Buffer {
    const pending = this.pending;
    this.pending = Buffer.alloc(0);
    return pending;
  }
}

/** Server → client: the first SETTINGS frame gets HEADER_TABLE_SIZE 0, then everything passes. */
export class SettingsRewriter {
  private readonly reader = new FrameReader();
  private done = false;

  push(chunk: Buffer): Buffer {
    if (this.done) return chunk;
    const frames = this.reader.feed(chunk);
    const out: Buffer[] = [];
    for (const frame of frames) {
      if (this.done || frame[3] !== TYPE_SETTINGS || (frame[4]! & FLAG_ACK) !== 0) {
        out.push(frame);
        continue;
      }
      this.done = true;
      const kept: Buffer[] = [];
      for (let at = FRAME_HEADER; at + 6 <= frame.length; at += 6) {
        if (frame.readUInt16BE(at) !== SETTINGS_HEADER_TABLE_SIZE) kept.push(frame.subarray(at, at + 6));
      }
      const zero = Buffer.alloc(6);
      zero.writeUInt16BE(SETTINGS_HEADER_TABLE_SIZE, 0);
      kept.push(zero);
      const payload = Buffer.concat(kept);
      out.push(frameHeader(payload.length, TYPE_SETTINGS, frame[4]!, 0), payload);
    }
    if (this.done) out.push(this.reader.drain());
    return Buffer.concat(out);
  }
}

/**
 * A client connection as the gRPC server sees it (grpc-js's connection injector): requests
 * rewritten by RequestRewriter, answers by SettingsRewriter. A rewrite that fails (a frame or
 * block over the limits) destroys the connection.
 */
export class AuthorityFront extends Duplex {
  private readonly requests = new RequestRewriter();
  private readonly answers = new SettingsRewriter();

  constructor(private readonly socket: Socket) {
    super();
    socket.on("data", (chunk: Buffer) => {
      let bytes: Buffer;
      try {
        bytes = this.requests.push(chunk);
      } catch (e) {
        this.destroy(e as Error);
        return;
      }
      if (bytes.length > 0 && !this.push(bytes)) socket.pause();
    });
    socket.on("end", () => this.push(null));
    socket.on("error", (e) => this.destroy(e));
    socket.on("close", () => this.destroy());
  }

  override _read(): void {
    this.socket.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    const bytes = this.answers.push(chunk);
    if (bytes.length === 0) callback();
    else this.socket.write(bytes, callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.socket.end(callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.socket.destroy();
    callback(error);
  }
}
