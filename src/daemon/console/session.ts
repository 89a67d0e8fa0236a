/**
 * One console connection, from handshake to close.
 *
 * Lifecycle: accept -> wait for `connect` (within the connect timeout) -> version and
 * permission checks (`connect_nack` and close on failure) -> `connect_ack` -> requests served
 * one at a time, in order, each answered by exactly one response -> close on EOF, on an
 * over-long line, or when the daemon shuts down (pending output is flushed first).
 *
 * A malformed line or an unknown request is answered with `{"response":{"error":...}}` and the
 * connection stays usable: the line framing is intact, so nothing is lost. An over-long line
 * closes the connection, since the rest of that line cannot be told apart from the next.
 */
import type { Socket } from "node:net";
import type { Logger } from "pino";
import { DecodeError, decodeMessage } from "../../protocol/codec.js";
import { LineReader, LineTooLongError } from "../../protocol/framing.js";
import { requiredPermission, type Message, type Request, type Response } from "../../protocol/messages.js";
import type { PermissionSet } from "../../protocol/permissions.js";
import { PROTOCOL_VERSION, isCompatibleClientVersion } from "../../protocol/version.js";
import type { ConsoleOptions } from "../config/schema.js";
import type { Peer } from "../events/types.js";
import type { NotificationHub } from "./hub.js";
import { Outbox } from "./outbox.js";
import { RateLimiter } from "./rate.js";

/** What a session needs from the daemon: a way to have a request served by the state owner. */
export type RequestDispatcher = (peer: Peer, request: Request, io: RequestIo) => Promise<Response>;

/** Access to the raw stream for requests that carry a payload after their line (install). */
export interface RequestIo {
  reader: LineReader;
  signal: AbortSignal;
  maxInstallSize: number;
  /** The stream is out of step (an unread payload): close once the response is written. */
  closeAfterReply(): void;
}

export interface SessionOptions {
  socket: Socket;
  peer: Peer;
  permissions: PermissionSet;
  options: ConsoleOptions;
  notificationBufferSize: number;
  hub: NotificationHub;
  dispatch: RequestDispatcher;
  log: Logger;
}

export class Session {
  private readonly abort = new AbortController();
  private readonly outbox: Outbox;
  private readonly reader: LineReader;
  private unsubscribe: (() => void) | undefined;
  private closing = false;

  constructor(private readonly o: SessionOptions) {
    this.outbox = new Outbox(o.socket, o.notificationBufferSize);
    this.reader = new LineReader(o.socket, o.options.maxRequestSize);
    o.socket.on("error", (e) => o.log.debug({ err: e }, "connection error"));
  }

  /** Serves the connection until it closes. Never rejects. */
  async run(): Promise<void> {
    try {
      if (await this.handshake()) await this.serve();
    } catch (e) {
      if (e instanceof LineTooLongError) this.o.log.warn(`closing connection: ${e.message}`);
      else if (!this.abort.signal.aborted) this.o.log.warn({ err: e }, "closing connection after error");
    } finally {
      this.unsubscribe?.();
      this.abort.abort();
      this.o.socket.end();
    }
  }

  /** Ends the session after flushing what was written (daemon shutdown). */
  close(): void {
    this.abort.abort();
    this.unsubscribe?.();
    this.o.socket.end();
    // A peer that never closes its side must not hold the daemon's shutdown.
    setTimeout(() => this.o.socket.destroy(), 1000).unref();
  }

  private async handshake(): Promise<boolean> {
    const timer = setTimeout(() => {
      this.o.log.info(`closing connection: no connect within ${this.o.options.connectTimeoutMs} ms`);
      this.o.socket.destroy();
    }, this.o.options.connectTimeoutMs);
    let line: string | null;
    try {
      line = await this.reader.nextLine();
    } finally {
      clearTimeout(timer);
    }
    if (line === null) return false;
    let message: Message;
    try {
      message = decodeMessage(line);
    } catch (e) {
      this.o.log.warn(`closing connection: invalid connect message: ${(e as Error).message}`);
      return false;
    }
    if (message.type !== "connect") {
      this.o.log.warn(`closing connection: expected connect, got ${message.type}`);
      return false;
    }
    const { version, subscribe_notifications } = message.connect;
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

  private async serve(): Promise<void> {
    const limiter = new RateLimiter(this.o.options.maxRequestsPerSec);
    for (;;) {
      const line = await this.reader.nextLine();
      if (line === null || this.abort.signal.aborted) return;
      if (line.trim() === "") continue;
      const response = await this.answer(line, limiter);
      this.outbox.send({ type: "response", response });
      if (this.closing) {
        this.o.log.warn("closing connection: an install payload was refused unread");
        return;
      }
    }
  }

  private async answer(line: string, limiter: RateLimiter): Promise<Response> {
    let message: Message;
    try {
      message = decodeMessage(line);
    } catch (e) {
      const cause = e instanceof DecodeError ? e.message : String(e);
      this.o.log.info(`invalid request: ${cause}`);
      return { type: "error", error: { type: "invalid_arguments", cause } };
    }
    if (message.type !== "request") {
      return {
        type: "error",
        error: { type: "invalid_arguments", cause: `expected a request, got ${message.type}` },
      };
    }
    const request = message.request;
    if (!this.o.permissions.has(requiredPermission(request))) {
      // A refused install's payload still follows on the stream: skip it, or close if too big.
      if (request.type === "install") {
        if (request.size <= this.o.options.maxInstallSize) {
          await this.reader.skipBytes(request.size, this.abort.signal);
        } else this.closing = true;
      }
      return { type: "permission_denied", request };
    }
    await limiter.take(this.abort.signal);
    return this.o.dispatch(this.o.peer, request, {
      reader: this.reader,
      signal: this.abort.signal,
      maxInstallSize: this.o.options.maxInstallSize,
      closeAfterReply: () => (this.closing = true),
    });
  }
}
