/**
 * A console connection: handshake, requests answered in order, notifications delivered to an
 * async iterator. Responses are matched to requests by order (the daemon answers one request
 * at a time, in order); notifications may arrive between them.
 */
import { connect as netConnect, type Socket } from "node:net";
import { decodeMessage, encodeMessage } from "../protocol/codec.js";
import { SKIFF_DIALECT } from "../protocol/dialect.js";
import { LineReader } from "../protocol/framing.js";
import type { Message, Notification, Request, Response } from "../protocol/messages.js";
import { parseConsoleUrl } from "../protocol/url.js";
import { SeenExits } from "./seen-exits.js";
import { PROTOCOL_VERSION } from "../protocol/version.js";
import {
  ConnectionClosedError,
  LaggedError,
  PermissionDeniedError,
  ProtocolVersionError,
  SkiffError,
  TimeoutError,
} from "./errors.js";
import { messageOf } from "../common/errors.js";

export interface ConnectOptions {
  /** Subscribe to notifications (needs the `notifications` permission). */
  notifications?: boolean;
  /** Aborts connecting and, later, closes the connection. */
  signal?: AbortSignal;
  /** Milliseconds for connecting and for each request; 0 disables. Default 10 s. */
  timeout?: number;
  /** Largest line accepted from the daemon. Default 16 MiB. */
  maxLineBytes?: number;
  /**
   * Skiff: the exits already seen; an `exit` of an instance in it is dropped (a daemon that
   * crashed while delivering it reports it again). Pass the same one to every reconnect of a
   * subscriber. Default: a new one for this connection.
   */
  seenExits?: SeenExits;
}

interface Pending {
  request: Request;
  resolve: (r: Response) => void;
  reject: (e: Error) => void;
  /** 0: no deadline. */
  timeoutMs: number;
  timer?: NodeJS.Timeout;
}

export class Connection {
  private readonly pending: Pending[] = [];
  private readonly notificationQueue: (Notification | Error)[] = [];
  private notificationWaiter: (() => void) | undefined;
  private closedError: Error | undefined;

  /** @internal use `connect()` */
  constructor(
    private readonly socket: Socket,
    private readonly reader: LineReader,
    private readonly timeout: number,
    private readonly seenExits: SeenExits,
  ) {
    void this.readLoop();
  }

  private async readLoop(): Promise<void> {
    let error: Error = new ConnectionClosedError();
    try {
      for (;;) {
        const line = await this.reader.nextLine();
        if (line === null) break;
        if (line.trim() === "") continue;
        this.deliver(decodeMessage(line));
      }
    } catch (e) {
      error = new ConnectionClosedError(`connection failed: ${messageOf(e)}`);
    }
    this.fail(error);
  }

  private deliver(message: Message): void {
    if (message.type === "response") {
      const p = this.pending.shift();
      if (!p) throw new SkiffError("response without a request");
      clearTimeout(p.timer);
      const next = this.pending[0];
      if (next) this.arm(next);
      p.resolve(message.response);
    } else if (message.type === "notification") {
      const n = message.notification;
      if (n.type === "exit" && n.instance !== undefined && !this.seenExits.firstTime(n.instance)) return;
      this.notificationQueue.push(n);
      this.notificationWaiter?.();
    }
  }

  private arm(p: Pending): void {
    if (p.timeoutMs <= 0) return;
    p.timer = setTimeout(() => {
      this.fail(new TimeoutError(`no response to ${p.request.type} within ${p.timeoutMs} ms`));
    }, p.timeoutMs);
  }

  private fail(error: Error): void {
    if (this.closedError) return;
    this.closedError = error;
    for (const p of this.pending.splice(0)) {
      clearTimeout(p.timer);
      p.reject(error);
    }
    this.notificationWaiter?.();
    this.socket.destroy();
  }

  /** Sends a request and resolves with its response (whatever variant it is). */
  /**
   * Sends a request and resolves with its response (whatever variant it is). The daemon answers
   * a connection's requests one at a time, in order, so a request's deadline (`timeoutMs`,
   * default the connection's; 0 for none) runs only while it is the one being answered.
   */
  request(
    request: Request,
    payload?: AsyncIterable<Buffer> | Buffer,
    options: { timeoutMs?: number } = {},
  ): Promise<Response> {
    if (this.closedError) return Promise.reject(this.closedError);
    return new Promise<Response>((resolve, reject) => {
      const p: Pending = { request, resolve, reject, timeoutMs: options.timeoutMs ?? this.timeout };
      this.pending.push(p);
      if (this.pending.length === 1) this.arm(p);
      this.socket.write(encodeMessage({ type: "request", request }));
      if (payload) void this.sendPayload(payload);
    });
  }

  private async sendPayload(payload: AsyncIterable<Buffer> | Buffer): Promise<void> {
    const chunks = Buffer.isBuffer(payload) ? [payload] : payload;
    try {
      for await (const chunk of chunks) {
        if (!this.socket.write(chunk)) await new Promise((r) => this.socket.once("drain", r));
      }
    } catch (e) {
      this.fail(new ConnectionClosedError(`payload failed: ${messageOf(e)}`));
    }
  }

  /**
   * Notifications in arrival order. Ends when the connection closes; throws LaggedError when
   * the daemon dropped notifications for this client (iterate again to go on).
   */
  async *notifications(): AsyncGenerator<Notification, void, undefined> {
    for (;;) {
      const next = this.notificationQueue.shift();
      if (next !== undefined) {
        if (next instanceof Error) throw next;
        if (next.type === "lagged") throw new LaggedError(next.missed);
        yield next;
        continue;
      }
      if (this.closedError) return;
      await new Promise<void>((resolve) => (this.notificationWaiter = resolve));
      this.notificationWaiter = undefined;
    }
  }

  get closed(): boolean {
    return this.closedError !== undefined;
  }

  close(): void {
    this.fail(new ConnectionClosedError("connection closed by client"));
  }
}

/** A socket to a console being connected (`dialConsole`). */
export interface Dial {
  socket: Socket;
  /** Resolves once the socket is connected; rejects with its error. */
  connected: Promise<void>;
  /** Destroys the socket on the caller's abort; the caller removes it when it is done. */
  onAbort: () => void;
  /** Destroys the socket after `timeout` ms; the caller clears it when it is done. */
  timer: NodeJS.Timeout | undefined;
}

/**
 * Opens a socket to the console at `url` (unix: or tcp:), destroyed when `signal` aborts or,
 * `timeout` ms (0: never) from now, with a `TimeoutError` saying `timedOut`.
 */
export function dialConsole(
  url: string,
  timeout: number,
  signal: AbortSignal | undefined,
  timedOut: string,
): Dial {
  const target = parseConsoleUrl(url);
  if (typeof target === "string") throw new SkiffError(target);
  const socket =
    target.scheme === "unix"
      ? netConnect({ path: target.path })
      : netConnect({ host: target.host, port: target.port });
  const onAbort = (): void => void socket.destroy(new SkiffError("aborted"));
  signal?.addEventListener("abort", onAbort, { once: true });
  const timer =
    timeout > 0 ? setTimeout(() => socket.destroy(new TimeoutError(timedOut)), timeout) : undefined;
  const connected = new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  return { socket, connected, onAbort, timer };
}

/** The console handshake in Skiff's dialect: `connect`, then `connect_ack` or a typed refusal. */
export async function consoleHandshake(
  socket: Socket,
  reader: LineReader,
  notifications: boolean,
): Promise<void> {
  socket.write(
    encodeMessage({
      type: "connect",
      // Skiff's dialect: everything Skiff has. A Northstar daemon ignores the member (its
      // `Connect` does not deny unknown fields), so this client still connects to one.
      connect: { version: PROTOCOL_VERSION, subscribe_notifications: notifications, dialect: SKIFF_DIALECT },
    }),
  );
  const line = await reader.nextLine();
  if (line === null) throw new ConnectionClosedError("daemon closed the connection during the handshake");
  const reply = decodeMessage(line);
  if (reply.type === "connect_nack") {
    socket.destroy();
    if (reply.nack.type === "permission_denied") throw new PermissionDeniedError();
    throw new ProtocolVersionError(reply.nack.version);
  }
  if (reply.type !== "connect_ack") throw new SkiffError(`unexpected ${reply.type} during the handshake`);
}

/** Connects and performs the handshake. */
export async function openConnection(url: string, options: ConnectOptions = {}): Promise<Connection> {
  const timeout = options.timeout ?? 10_000;
  const { socket, connected, onAbort, timer } = dialConsole(
    url,
    timeout,
    options.signal,
    `connect to ${url} timed out`,
  );
  try {
    await connected;
    const reader = new LineReader(socket, options.maxLineBytes ?? 16 * 1024 * 1024);
    await consoleHandshake(socket, reader, options.notifications ?? false);
    const connection = new Connection(socket, reader, timeout, options.seenExits ?? new SeenExits());
    options.signal?.removeEventListener("abort", onAbort);
    options.signal?.addEventListener("abort", () => connection.close(), { once: true });
    return connection;
  } catch (e) {
    socket.destroy();
    options.signal?.removeEventListener("abort", onAbort);
    if (e instanceof SkiffError) throw e;
    throw new ConnectionClosedError(`cannot connect to ${url}: ${messageOf(e)}`);
  } finally {
    clearTimeout(timer);
  }
}
