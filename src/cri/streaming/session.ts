/**
 * One SPDY/3.1 connection (spdy.ts has the wire format): streams with their headers, incoming
 * data as a Readable, outgoing data as a Writable, PING answered, GOAWAY sent and honoured. The
 * server side serves the kubelet's clients; the client side is what the tests speak.
 *
 * Limits: frames and header blocks as in spdy.ts; at most `maxStreams` streams open at once
 * (one more closes the session: a client that opens that many is broken or hostile); a stream's
 * unread incoming data past STREAM_BUFFER pauses the socket (back-pressure to the peer through
 * TCP, as moby/spdystream does with its unbuffered channels); `idleMs` without a byte closes it.
 * Any protocol error answers GOAWAY(PROTOCOL_ERROR) and destroys the connection, never more.
 *
 * INVARIANTS: frames are handled one at a time in arrival order; while a header block inflates
 * (asynchronously, zlib's thread pool) the socket is paused, so bytes queued in the decoder stay
 * below one socket read. A stream leaves `streams` once both sides sent FIN, or on a reset, or
 * when the session ends (then its readable errors or ends and its writable is destroyed).
 */
import { EventEmitter } from "node:events";
import type { Socket } from "node:net";
import { Readable, Writable } from "node:stream";
import {
  DEFAULT_FRAME_LIMITS,
  DEFAULT_HEADER_LIMITS,
  FrameDecoder,
  FrameError,
  GoAwayStatus,
  HeaderDeflater,
  HeaderInflater,
  RstStatus,
  encode,
  headerValue,
  parseHeaderBlock,
  serializeHeaderBlock,
  type Frame,
  type FrameLimits,
  type HeaderLimits,
  type Headers,
} from "./spdy.js";

/** Unread data a stream holds before the connection stops reading. */
const STREAM_BUFFER = 256 * 1024;
/** Outgoing data is sent in frames of at most this (spdystream reads any size). */
const OUT_FRAME = 32 * 1024;

export interface SessionOptions {
  role: "server" | "client";
  maxStreams: number;
  idleMs: number;
  frameLimits?: FrameLimits;
  headerLimits?: HeaderLimits;
}

export class SpdyStream extends EventEmitter {
  /** Incoming data; ends at the peer's FIN, errors on a reset or a lost session. */
  readonly readable: Readable;
  /** Outgoing data; `end()` sends FIN. */
  readonly writable: Writable;
  /** Client side: resolves with the SYN_REPLY's headers. */
  readonly replied: Promise<Headers>;
  private resolveReplied!: (h: Headers) => void;
  private rejectReplied!: (e: Error) => void;
  remoteFin = false;
  localFin = false;
  resetDone = false;
  sentReply = false;
  private full = false;

  constructor(
    private readonly session: SpdySession,
    readonly id: number,
    readonly headers: Headers,
  ) {
    super();
    // Node calls read() when the consumer wants more: the stream stops holding the connection.
    this.readable = new Readable({
      highWaterMark: STREAM_BUFFER,
      read: () => {
        this.full = false;
        session.flowChanged();
      },
    });
    this.writable = new Writable({
      write: (chunk: Buffer, _encoding, callback) => session.sendData(this, chunk, false, callback),
      final: (callback) => session.sendData(this, Buffer.alloc(0), true, callback),
    });
    this.writable.on("error", () => undefined);
    this.readable.on("error", () => undefined);
    this.replied = new Promise((resolve, reject) => {
      this.resolveReplied = resolve;
      this.rejectReplied = reject;
    });
    this.replied.catch(() => undefined);
  }

  /** Server side: accepts the stream (SYN_REPLY, no headers). */
  reply(): void {
    if (this.sentReply) return;
    this.sentReply = true;
    this.session.sendReply(this);
  }

  /** Ends the stream at once both ways (RST_STREAM). */
  reset(status: number = RstStatus.CANCEL): void {
    this.session.resetStream(this, status, true);
  }

  /**
   * Whether its unread data holds the connection: the last push found the buffer full, and
   * the consumer has not asked for more since (push's false and read() are Node's pair).
   */
  get blocked(): boolean {
    return this.full;
  }

  /** Incoming data for the reader. */
  deliver(data: Buffer): void {
    this.full = !this.readable.push(data);
  }

  onReply(headers: Headers): void {
    this.resolveReplied(headers);
  }

  onGone(error: Error): void {
    this.resetDone = true;
    this.rejectReplied(error);
    if (!this.remoteFin) this.readable.destroy(error);
    this.writable.destroy();
    this.emit("reset", error);
  }
}

export class SpdySession extends EventEmitter {
  private readonly decoder: FrameDecoder;
  private readonly inflater: HeaderInflater;
  private readonly deflater = new HeaderDeflater();
  private readonly headerLimits: HeaderLimits;
  private readonly streams = new Map<number, SpdyStream>();
  private lastPeerStream = 0;
  private nextStream: number;
  private inflating = false;
  private running = false;
  private ended = false;
  private goneAway = false;
  /** Writers waiting for the socket to drain (one list, not a listener per stream). */
  private drainWaiters: (() => void)[] = [];
  readonly closed: Promise<void>;

  constructor(
    private readonly socket: Socket,
    private readonly o: SessionOptions,
  ) {
    super();
    this.decoder = new FrameDecoder(o.frameLimits ?? DEFAULT_FRAME_LIMITS);
    this.headerLimits = o.headerLimits ?? DEFAULT_HEADER_LIMITS;
    this.inflater = new HeaderInflater(this.headerLimits);
    this.nextStream = o.role === "client" ? 1 : 2;
    this.closed = new Promise((resolve) => socket.once("close", () => resolve()));
    socket.setNoDelay(true);
    socket.setTimeout(o.idleMs, () => this.fail(new FrameError("idle timeout")));
    socket.on("data", (chunk: Buffer) => {
      this.decoder.push(chunk);
      this.pump();
    });
    socket.on("error", () => undefined);
    socket.on("drain", () => this.drained());
    // The peer's EOF ends the session (as spdystream's read loop does): the HTTP server's
    // sockets allow half-open connections, so without this a gone client would hold it open.
    socket.once("end", () => {
      this.finish(new Error("the peer closed the connection"));
      socket.end();
    });
    socket.once("close", () => this.finish(new Error("the connection closed")));
  }

  /** Whether the session is over (the "end" event was emitted). */
  get isEnded(): boolean {
    return this.ended;
  }

  /** Client side: opens a stream with `headers`. */
  openStream(headers: Headers, fin = false): SpdyStream {
    const id = this.nextStream;
    this.nextStream += 2;
    const stream = new SpdyStream(this, id, headers);
    this.streams.set(id, stream);
    if (fin) stream.localFin = true;
    this.write(encode.synStream(id, this.deflater.deflate(serializeHeaderBlock(headers)), { fin }));
    return stream;
  }

  /** Sends GOAWAY(status) and closes the connection once what was written has gone. */
  close(status: number = GoAwayStatus.OK): void {
    if (this.ended) return;
    if (!this.goneAway) {
      this.goneAway = true;
      this.write(encode.goaway(this.lastPeerStream, status));
    }
    this.socket.end();
    this.finish(new Error("the session closed"));
  }

  /** Sends raw bytes (tests speak broken frames with it). */
  writeRaw(bytes: Buffer): void {
    this.write(bytes);
  }

  sendReply(stream: SpdyStream): void {
    this.write(encode.synReply(stream.id, this.deflater.deflate(serializeHeaderBlock(new Map()))));
  }

  sendData(stream: SpdyStream, data: Buffer, fin: boolean, callback: (e?: Error | null) => void): void {
    if (this.ended || stream.resetDone || stream.localFin) {
      callback(new Error(`stream ${stream.id} is closed`));
      return;
    }
    let ok = true;
    for (let at = 0; at < data.length; at += OUT_FRAME)
      ok = this.write(encode.data(stream.id, data.subarray(at, at + OUT_FRAME), false)) && ok;
    if (fin) {
      stream.localFin = true;
      ok = this.write(encode.data(stream.id, Buffer.alloc(0), true)) && ok;
      this.maybeDone(stream);
    }
    if (ok) callback();
    else this.drainWaiters.push(() => callback());
  }

  resetStream(stream: SpdyStream, status: number, send: boolean): void {
    if (stream.resetDone) return;
    if (send && !this.ended) this.write(encode.rstStream(stream.id, status));
    this.streams.delete(stream.id);
    stream.onGone(new Error(`stream ${stream.id} reset (status ${status})`));
    this.flowChanged();
  }

  /** Re-evaluates whether the socket may be read. */
  flowChanged(): void {
    if (this.ended) return;
    const blocked = this.inflating || [...this.streams.values()].some((s) => s.blocked);
    if (blocked) this.socket.pause();
    else this.socket.resume();
  }

  private write(bytes: Buffer): boolean {
    if (this.socket.destroyed || !this.socket.writable) return true;
    return this.socket.write(bytes);
  }

  private maybeDone(stream: SpdyStream): void {
    if (stream.localFin && stream.remoteFin) this.streams.delete(stream.id);
  }

  private drained(): void {
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const waiter of waiters) waiter();
  }

  private fail(error: Error): void {
    if (this.ended) return;
    const status = error instanceof FrameError && error.status === GoAwayStatus.INTERNAL_ERROR ? 2 : 1;
    this.emit("protocol-error", error);
    if (!this.goneAway) {
      this.goneAway = true;
      this.write(encode.goaway(this.lastPeerStream, status));
    }
    this.socket.end();
    // A peer that does not read must not hold the socket open.
    setTimeout(() => this.socket.destroy(), 1000).unref();
    this.finish(error);
  }

  private finish(error: Error): void {
    if (this.ended) return;
    this.ended = true;
    this.inflater.close();
    this.drained(); // their writes fail from now on (sendData), none waits forever
    for (const stream of this.streams.values()) stream.onGone(error);
    this.streams.clear();
    this.emit("end", error);
  }

  /** Handles decoded frames in order, one at a time. */
  private pump(): void {
    if (this.running || this.ended) return;
    this.running = true;
    void (async () => {
      try {
        for (let frame = this.decoder.next(); frame !== undefined && !this.ended; frame = this.decoder.next())
          await this.handle(frame);
      } catch (e) {
        this.fail(e instanceof Error ? e : new Error(String(e)));
      } finally {
        // Bytes that arrived during an await were taken by the loop's next(): none wait here.
        this.running = false;
      }
    })();
  }

  private async headerBlock(block: Buffer): Promise<Headers> {
    this.inflating = true;
    this.flowChanged();
    try {
      return parseHeaderBlock(await this.inflater.inflate(block), this.headerLimits);
    } finally {
      this.inflating = false;
      this.flowChanged();
    }
  }

  private async handle(frame: Frame): Promise<void> {
    switch (frame.type) {
      case "syn_stream": {
        // Headers first: the compression state must advance even for a stream that is refused.
        const headers = await this.headerBlock(frame.headerBlock);
        const peerParity = this.o.role === "server" ? 1 : 0;
        if (
          frame.streamId === 0 ||
          frame.streamId % 2 !== peerParity ||
          frame.streamId <= this.lastPeerStream
        )
          throw new FrameError(`SYN_STREAM with stream id ${frame.streamId} out of order`);
        this.lastPeerStream = frame.streamId;
        if (this.goneAway) {
          this.write(encode.rstStream(frame.streamId, RstStatus.REFUSED_STREAM));
          return;
        }
        if (this.streams.size >= this.o.maxStreams)
          throw new FrameError(`more than ${this.o.maxStreams} streams open at once`);
        const stream = new SpdyStream(this, frame.streamId, headers);
        this.streams.set(frame.streamId, stream);
        if (frame.unidirectional) stream.localFin = true;
        if (frame.fin) {
          stream.remoteFin = true;
          stream.readable.push(null);
        }
        this.emit("stream", stream);
        return;
      }
      case "syn_reply": {
        const headers = await this.headerBlock(frame.headerBlock);
        const stream = this.streams.get(frame.streamId);
        if (stream === undefined) return;
        stream.onReply(headers);
        if (frame.fin) this.remoteEnd(stream);
        return;
      }
      case "headers": {
        await this.headerBlock(frame.headerBlock);
        const stream = this.streams.get(frame.streamId);
        if (stream !== undefined && frame.fin) this.remoteEnd(stream);
        return;
      }
      case "data": {
        const stream = this.streams.get(frame.streamId);
        if (stream === undefined) {
          // A stream that ended (or never was): the draft's answer, the session goes on.
          this.write(encode.rstStream(frame.streamId, RstStatus.INVALID_STREAM));
          return;
        }
        if (stream.remoteFin) {
          this.resetStream(stream, RstStatus.STREAM_ALREADY_CLOSED, true);
          return;
        }
        if (frame.data.length > 0) stream.deliver(frame.data);
        if (frame.fin) this.remoteEnd(stream);
        this.flowChanged();
        return;
      }
      case "rst_stream": {
        const stream = this.streams.get(frame.streamId);
        if (stream !== undefined) this.resetStream(stream, frame.status, false);
        return;
      }
      case "ping":
        // Answer the peer's pings (client ids are odd, server ids even); a ping of our own
        // parity is the answer to one we sent.
        if (frame.id % 2 === (this.o.role === "server" ? 1 : 0)) this.write(encode.ping(frame.id));
        else this.emit("pong", frame.id);
        return;
      case "goaway":
        // The peer opens no more streams; those open run to their end.
        this.goneAway = true;
        this.emit("goaway");
        return;
      case "settings":
      case "window_update":
        // Flow control is not enforced by the Go peers; see spdy.ts.
        return;
      case "unknown":
        // The draft says ignore; no client of this server sends any, so it is a hostile peer.
        throw new FrameError(`control frame of unknown type ${frame.frameType}`);
    }
  }

  private remoteEnd(stream: SpdyStream): void {
    if (stream.remoteFin) return;
    stream.remoteFin = true;
    stream.readable.push(null);
    this.maybeDone(stream);
  }
}

/**
 * Waits for the client to open exactly the streams `expected` names (by their "streamtype"
 * header, each once), replying to each; any other stream is refused. Resolves the streams once
 * all are open, or undefined when `timeoutMs` passes or the session ends first (the caller closes
 * it). From then on every further stream is refused: remotecommand, attach and the like open
 * their streams once, up front.
 */
export async function acceptStreams<T extends string>(
  session: SpdySession,
  expected: ReadonlySet<T>,
  timeoutMs: number,
  onRefused?: (type: string) => void,
): Promise<Map<T, SpdyStream> | undefined> {
  const streams = new Map<T, SpdyStream>();
  const complete = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => done(false), timeoutMs);
    const onStream = (stream: SpdyStream): void => {
      const type = headerValue(stream.headers, "streamtype");
      if (!expected.has(type as T) || streams.has(type as T)) {
        onRefused?.(type);
        stream.reset(RstStatus.REFUSED_STREAM);
        return;
      }
      stream.reply();
      streams.set(type as T, stream);
      if (streams.size === expected.size) done(true);
    };
    const onEnd = (): void => done(false);
    function done(ok: boolean): void {
      clearTimeout(timer);
      session.off("stream", onStream);
      session.off("end", onEnd);
      resolve(ok);
    }
    session.on("stream", onStream);
    session.on("end", onEnd);
  });
  if (!complete) return undefined;
  session.on("stream", (stream: SpdyStream) => stream.reset(RstStatus.REFUSED_STREAM));
  return streams;
}
