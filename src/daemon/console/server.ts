/**
 * Console listeners: one server per configured URL (Unix socket or TCP). Each accepted
 * connection becomes a Session. Unix sockets get the configured mode right after binding, and a
 * stale socket file is replaced.
 *
 * Bounds: a listener serves at most `max_connections` at once (Node closes further ones as it
 * accepts them, before any session exists); all sessions share one buffer budget.
 *
 * INVARIANTS: every accepted socket is in `sockets` until its `close` event, so `close()` can
 * destroy whatever is left after the sessions' linger, and shutdown never waits on a peer.
 */
import { chmod, mkdir, unlink } from "node:fs/promises";
import { createServer, type Server, type Socket } from "node:net";
import { dirname } from "node:path";
import type { Logger } from "pino";
import { listen } from "../../common/listen.js";
import { formatConsoleUrl } from "../../protocol/url.js";
import type { ListenerConfig } from "../config/schema.js";
import { ConsoleBudget } from "./budget.js";
import type { NotificationHub } from "./hub.js";
import { SESSION_LINGER_MS, Session, type RequestDispatcher } from "./session.js";
import { bestEffort } from "../errors.js";

/** Refused connections of a listener or container console are logged at most this often. */
const DROP_LOG_INTERVAL_MS = 10_000;

/**
 * Connections over `server.maxConnections` are closed by Node; says so with `message` and the
 * count dropped so far, at most once per DROP_LOG_INTERVAL_MS (a flood makes no line per drop).
 * Shared by the listeners and the container consoles.
 */
export function logDrops(
  server: Server,
  log: Logger,
  fields: Record<string, unknown>,
  message: string,
): void {
  let dropped = 0;
  let lastLog = -Infinity;
  server.on("drop", () => {
    dropped++;
    const now = performance.now();
    if (now - lastLog < DROP_LOG_INTERVAL_MS) return;
    lastLog = now;
    log.warn({ ...fields, dropped }, message);
  });
}

export interface ConsoleServerOptions {
  listeners: ListenerConfig[];
  notificationBufferSize: number;
  /** Bytes all connections together may buffer (`console_buffer_budget`). */
  bufferBudget: number;
  hub: NotificationHub;
  dispatch: RequestDispatcher;
  log: Logger;
}

export class ConsoleServer {
  private readonly servers: { config: ListenerConfig; server: Server }[] = [];
  private readonly sessions = new Set<Session>();
  private readonly sockets = new Set<Socket>();
  private readonly budget: ConsoleBudget;
  private connectionsTotal = 0;

  constructor(private readonly o: ConsoleServerOptions) {
    this.budget = new ConsoleBudget(o.bufferBudget);
  }

  /** Bytes buffered for all connections (unfinished requests, unread output). */
  get bufferedBytes(): number {
    return this.budget.used;
  }

  get connections(): number {
    return this.sessions.size;
  }

  get connectionsAccepted(): number {
    return this.connectionsTotal;
  }

  async listen(): Promise<void> {
    for (const config of this.o.listeners) {
      const server = createServer({ allowHalfOpen: false }, (socket) => this.accept(config, socket));
      server.maxConnections = config.options.maxConnections;
      logDrops(
        server,
        this.o.log,
        { listener: config.id },
        `refusing connections: ${config.options.maxConnections} connections open (max_connections)`,
      );
      await this.bind(config, server);
      server.on("error", (e) => this.o.log.error({ err: e, listener: config.id }, "console listener failed"));
      this.servers.push({ config, server });
      this.o.log.info(
        { listener: config.id, permissions: [...config.permissions] },
        `console listening on ${formatConsoleUrl(config.url)}`,
      );
    }
  }

  private async bind(config: ListenerConfig, server: Server): Promise<void> {
    if (config.url.scheme === "unix") {
      const path = config.url.path;
      await mkdir(dirname(path), { recursive: true, mode: 0o755 });
      await bestEffort(this.o.log, `removing a stale socket ${path}`, unlink(path));
      // No umask games: they would leak into files other code creates meanwhile. A fresh socket
      // is 0755 at most under the default umask, which no other user can connect to (connect
      // needs write permission), and gets its configured mode before this returns.
      await listen(server, { path });
      await chmod(path, config.mode);
    } else {
      const { host, port } = config.url;
      await listen(server, { host, port });
    }
  }

  /** The address a TCP listener bound (useful with port 0 in tests). */
  address(listenerId: string): string | undefined {
    const entry = this.servers.find((s) => s.config.id === listenerId);
    if (!entry) return undefined;
    if (entry.config.url.scheme === "unix") return `unix://${entry.config.url.path}`;
    const addr = entry.server.address();
    return addr && typeof addr === "object" ? `tcp://${addr.address}:${addr.port}` : undefined;
  }

  private accept(config: ListenerConfig, socket: Socket): void {
    this.connectionsTotal++;
    this.sockets.add(socket);
    socket.once("close", () => this.sockets.delete(socket));
    const address =
      config.url.scheme === "unix" ? `${config.id}` : `${socket.remoteAddress}:${socket.remotePort}`;
    const log = this.o.log.child({ listener: config.id, peer: address });
    const session = new Session({
      socket,
      peer: { kind: "extern", address },
      permissions: config.permissions,
      options: config.options,
      notificationBufferSize: this.o.notificationBufferSize,
      hub: this.o.hub,
      budget: this.budget,
      dispatch: this.o.dispatch,
      log,
    });
    this.sessions.add(session);
    void session.run().finally(() => this.sessions.delete(session));
  }

  /**
   * Stops accepting, ends every session after flushing its output (within the sessions'
   * linger), destroys any connection still open after that, removes Unix sockets. Completes
   * within about SESSION_LINGER_MS whatever the peers do.
   */
  async close(): Promise<void> {
    const closing = this.servers.map(
      ({ server }) => new Promise<void>((resolve) => server.close(() => resolve())),
    );
    for (const session of this.sessions) session.close();
    await this.socketsClosed(SESSION_LINGER_MS);
    for (const socket of this.sockets) socket.destroy();
    await Promise.all(closing);
    for (const { config } of this.servers) {
      if (config.url.scheme === "unix") {
        await bestEffort(this.o.log, `removing socket ${config.url.path}`, unlink(config.url.path));
      }
    }
    this.servers.length = 0;
  }

  /** Resolves when every accepted socket has closed, or after `timeoutMs`. */
  private async socketsClosed(timeoutMs: number): Promise<void> {
    if (this.sockets.size === 0) return;
    const pending = [...this.sockets].map(
      (socket) => new Promise<void>((resolve) => socket.once("close", () => resolve())),
    );
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(pending),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs))),
    ]);
    clearTimeout(timer);
  }
}
