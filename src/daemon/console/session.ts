/**
 * One console connection, from handshake to close.
 *
 * Lifecycle: accept -> wait for `connect` (within the connect timeout) -> version and
 * permission checks (`connect_nack` and close on failure) -> `connect_ack` -> requests served
 * one at a time, in order, each answered by exactly one response -> close on EOF, on bad
 * input, on a timeout, or when the daemon shuts down.
 *
 * The dialect (docs/console.md, "Dialects") is decided by `connect` and fixed for the session:
 * the outbox encodes every line in it. In the Skiff dialect a malformed line or an unknown
 * request is answered with `{"response":{"error":...}}` and the connection stays usable: the
 * line framing is intact, so nothing is lost. In the Northstar dialect it closes the connection,
 * as Northstar's console does (its clients know no such envelope), and so does a request
 * Northstar does not have, or a subscriber that lags. An over-long line closes the connection in
 * both, since the rest of that line cannot be told apart from the next.
 *
 * Bounds (docs/console.md, "Limits"):
 * - input: one unfinished line of at most `maxRequestSize`, and only while the console's
 *   global budget grants it; a request is read only after the previous one is answered.
 * - output: after a response, the next request is not read while the unread output is over
 *   `maxUnreadSize` (or over the socket's high-water mark while the global budget is
 *   exceeded); output that does not drain within `unreadTimeoutMs` closes the connection.
 * - time: `connectTimeoutMs` to the handshake, then `idleTimeoutMs` between requests (not for
 *   subscribers), so an idle connection does not hold its descriptor forever.
 *
 * INVARIANTS: every way out of `run` releases the descriptor: a connection closed for bad
 * input or a timeout is destroyed at once; one closed in good order (EOF, nack, shutdown) is
 * ended and destroyed as soon as its output is flushed, or after `lingerMs` at most, whatever
 * the peer does. Nothing but `run` reads the socket.
 */
import type { Socket } from "node:net";
import { setImmediate as nextTurn } from "node:timers/promises";
import type { Logger } from "pino";
import { DecodeError, decodeMessage } from "../../protocol/codec.js";
import { northstarRequest } from "../../protocol/dialect.js";
import { BufferRefusedError, LineReader, LineTooLongError } from "../../protocol/framing.js";
import { requiredPermission, type Message, type Request, type Response } from "../../protocol/messages.js";
import type { PermissionSet } from "../../protocol/permissions.js";
import { PROTOCOL_VERSION, isCompatibleClientVersion } from "../../protocol/version.js";
import type { ConsoleOptions } from "../config/schema.js";
import type { Peer } from "../events/types.js";
import type { BudgetAccount, ConsoleBudget } from "./budget.js";
import type { NotificationHub } from "./hub.js";
import { Outbox } from "./outbox.js";
import { RateLimiter } from "./rate.js";
import { messageOf } from "../errors.js";
import { permissionDenied, requestError } from "../responses.js";

/** What a session needs from the daemon: a way to have a request served by the state owner. */
export type RequestDispatcher = (peer: Peer, request: Request, io: RequestIo) => Promise<Response>;

/**
 * Access to the raw stream for requests that carry a payload after their line (install) or take
 * the connection over after their response (exec, daemon/exec/).
 */
export interface RequestIo {
  reader: LineReader;
  signal: AbortSignal;
  maxInstallSize: number;
  /** The stream is out of step (an unread payload): close once the response is written. */
  closeAfterReply(): void;
  /** Whether the connection can leave line framing (it is not subscribed to notifications). */
  upgradable: boolean;
  /**
   * Hands the connection to `stream` once this request's response is written (exec): the
   * session reads no more requests and ends in good order when `stream` settles.
   */
  upgrade(stream: (socket: Socket, reader: LineReader, signal: AbortSignal) => Promise<void>): void;
}

export interface SessionOptions {
  socket: Socket;
  peer: Peer;
  permissions: PermissionSet;
  options: ConsoleOptions;
  notificationBufferSize: number;
  hub: NotificationHub;
  dispatch: RequestDispatcher;
  /** The console's global buffer budget; without one, only the per-connection bounds hold. */
  budget?: ConsoleBudget;
  log: Logger;
}

/** Longest a connection closed in good order may take to flush before it is destroyed. */
export const SESSION_LINGER_MS = 1000;

/** A connection closed for a reason already logged; `run` destroys it without more words. */
class Dropped extends Error {
  override name = "Dropped";
}

export class Session {
  private readonly abort = new AbortController();
  private readonly account: BudgetAccount | undefined;
  private readonly outbox: Outbox;
  private readonly reader: LineReader;
  private unsubscribe: (() => void) | undefined;
  private closing = false;
  private upgraded: ((socket: Socket, reader: LineReader, signal: AbortSignal) => Promise<void>) | undefined;

  constructor(private readonly o: SessionOptions) {
    this.account = o.budget?.open();
    this.outbox = new Outbox(o.socket, o.notificationBufferSize, this.account);
    this.reader = new LineReader(o.socket, o.options.maxRequestSize, this.account);
    o.socket.on("error", (e) => o.log.debug({ err: e }, "connection error"));
    o.socket.once("close", () => this.account?.close());
  }

  /** Serves the connection until it closes. Never rejects. */
  async run(): Promise<void> {
    let orderly = false;
    try {
      if (await this.handshake()) await this.serve();
      orderly = true;
    } catch (e) {
      if (e instanceof LineTooLongError || e instanceof BufferRefusedError)
        this.o.log.warn(`closing connection: ${e.message}`);
      else if (!(e instanceof Dropped) && !this.abort.signal.aborted)
        this.o.log.warn({ err: e }, "closing connection after error");
    } finally {
      // After close() (shutdown) the session ends in good order whatever the error was.
      if (orderly || this.abort.signal.aborted) this.end(SESSION_LINGER_MS);
      else this.o.socket.destroy();
      this.unsubscribe?.();
      this.abort.abort();
    }
  }

  /** Ends the session after flushing what was written, within `SESSION_LINGER_MS` (daemon shutdown). */
  close(): void {
    this.abort.abort();
    this.unsubscribe?.();
    this.end(SESSION_LINGER_MS);
  }

  /**
   * Half-closes the connection, and destroys it once the output is flushed or after `lingerMs`:
   * a peer that never reads, or never closes its side, cannot keep the descriptor.
   */
  private end(lingerMs: number): void {
    const socket = this.o.socket;
    if (socket.destroyed || socket.writableEnded) return;
    socket.once("finish", () => socket.destroy());
    setTimeout(() => socket.destroy(), lingerMs).unref();
    socket.end();
  }

  /** Logs why and destroys the connection; the pending read fails and `run` returns. */
  private drop(reason: string): never {
    this.o.log.info(`closing connection: ${reason}`);
    this.o.socket.destroy();
    throw new Dropped(reason);
  }

  /** Reads the next line, destroying the connection if none is complete within `timeoutMs` (0: none). */
  private async nextLine(timeoutMs: number, what: string): Promise<string | null> {
    if (timeoutMs === 0) return this.reader.nextLine();
    let expired = false;
    const timer = setTimeout(() => {
      expired = true;
      this.o.socket.destroy();
    }, timeoutMs);
    let line: string | null = null;
    try {
      line = await this.reader.nextLine();
    } catch (e) {
      if (!expired) throw e;
    } finally {
      clearTimeout(timer);
    }
    if (expired) this.drop(`${what} within ${timeoutMs} ms`);
    return line;
  }

  private async handshake(): Promise<boolean> {
    const line = await this.nextLine(this.o.options.connectTimeoutMs, "no connect");
    if (line === null) return false;
    let message: Message;
    try {
      message = decodeMessage(line);
    } catch (e) {
      this.drop(`invalid connect message: ${messageOf(e)}`);
    }
    if (message.type !== "connect") this.drop(`expected connect, got ${message.type}`);
    const { version, subscribe_notifications } = message.connect;
    this.outbox.dialect = message.connect.dialect ?? "northstar";
    this.outbox.onLag = () => {
      this.o.log.warn("closing connection: a Northstar subscriber lagged notifications");
      this.o.socket.destroy();
    };
    if (!isCompatibleClientVersion(version)) {
      this.o.log.warn(`closing connection: client protocol version ${version} is below ${PROTOCOL_VERSION}`);
      this.outbox.send({
        type: "connect_nack",
        nack: { type: "invalid_protocol_version", version: PROTOCOL_VERSION },
      });
      return false;
    }
    if (subscribe_notifications && !this.o.permissions.has("notifications")) {
      this.o.log.warn("closing connection: notifications requested without permission");
      this.outbox.send({ type: "connect_nack", nack: { type: "permission_denied" } });
      return false;
    }
    this.outbox.send({ type: "connect_ack" });
    if (subscribe_notifications) {
      this.unsubscribe = this.o.hub.add(this.outbox);
      this.o.log.info("client subscribed to notifications");
    }
    return true;
  }

  /**
   * Serves requests until EOF, until an install left the stream out of step, or until an
   * upgraded request's stream (exec) has ended.
   */
  private async serve(): Promise<void> {
    const limiter = new RateLimiter(this.o.options.maxRequestsPerSec);
    const idleTimeoutMs = this.unsubscribe ? 0 : this.o.options.idleTimeoutMs;
    for (;;) {
      const line = await this.nextLine(idleTimeoutMs, "no request");
      if (line === null || this.abort.signal.aborted) return;
      if (line.trim() === "") {
        if (this.reader.buffered > 0) await nextTurn();
        continue;
      }
      const { response, request } = await this.answer(line, limiter);
      if (!this.outbox.send({ type: "response", response }, request)) {
        this.drop(`no Northstar form for the ${response.type} response to ${request?.type ?? "a line"}`);
      }
      if (this.closing) {
        this.o.log.warn("closing connection: an install payload was refused unread");
        return;
      }
      if (this.upgraded) {
        await this.upgraded(this.o.socket, this.reader, this.abort.signal);
        return;
      }
      await this.waitForReader();
      // Pipelined requests (or empty lines, above) are already buffered: one per turn of the
      // event loop, so that other connections' I/O gets in between.
      if (this.reader.buffered > 0) await nextTurn();
    }
  }

  /**
   * Back-pressure: holds the next read while this connection's unread output is over its
   * bound, or while it has any to drain and the console's budget is exceeded.
   */
  private async waitForReader(): Promise<void> {
    const over = (): boolean =>
      this.outbox.needsDrain &&
      (this.outbox.unread > this.o.options.maxUnreadSize || this.o.budget?.exceeded === true);
    if (!over()) return;
    const timeoutMs = this.o.options.unreadTimeoutMs;
    const timer = setTimeout(() => this.o.socket.destroy(), timeoutMs);
    try {
      while (over()) {
        if (!(await this.outbox.drained())) {
          this.drop(`${this.outbox.unread} bytes of output not read within ${timeoutMs} ms`);
        }
      }
    } finally {
      clearTimeout(timer);
    }
  }

  /** The response to `line`, with the request it answers (none for a line that is not one). */
  private async answer(
    line: string,
    limiter: RateLimiter,
  ): Promise<{ response: Response; request?: Request }> {
    const northstar = this.outbox.dialect === "northstar";
    let message: Message;
    try {
      message = decodeMessage(line);
    } catch (e) {
      const cause = e instanceof DecodeError ? e.message : String(e);
      if (northstar) this.drop(`invalid request: ${cause}`);
      this.o.log.info(`invalid request: ${cause}`);
      return { response: requestError({ type: "invalid_arguments", cause }) };
    }
    if (message.type !== "request") {
      const cause = `expected a request, got ${message.type}`;
      if (northstar) this.drop(cause);
      return { response: requestError({ type: "invalid_arguments", cause }) };
    }
    const request = message.request;
    if (northstar && northstarRequest(request) === undefined) {
      this.drop(`${request.type} is a Skiff request; the connection speaks Northstar's dialect`);
    }
    if (!this.o.permissions.has(requiredPermission(request))) {
      // A refused install's payload still follows on the stream: skip it, or close if too big.
      if (request.type === "install") {
        if (request.size <= this.o.options.maxInstallSize) {
          await this.reader.skipBytes(request.size, this.abort.signal);
        } else this.closing = true;
      }
      return { response: permissionDenied(request), request };
    }
    await limiter.take(this.abort.signal);
    const response = await this.o.dispatch(this.o.peer, request, {
      reader: this.reader,
      signal: this.abort.signal,
      maxInstallSize: this.o.options.maxInstallSize,
      closeAfterReply: () => (this.closing = true),
      upgradable: this.unsubscribe === undefined,
      upgrade: (stream) => (this.upgraded = stream),
    });
    return { response, request };
  }
}
