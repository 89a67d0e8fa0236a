/**
 * Console listeners: one server per configured URL (Unix socket or TCP). Each accepted
 * connection becomes a Session. Unix sockets get the configured mode right after binding, and a
 * stale socket file is replaced.
 */
import { chmod, mkdir, unlink } from "node:fs/promises";
import { createServer, type Server, type Socket } from "node:net";
import { dirname } from "node:path";
import type { Logger } from "pino";
import { formatConsoleUrl } from "../../protocol/url.js";
import type { ListenerConfig } from "../config/schema.js";
import type { NotificationHub } from "./hub.js";
import { Session, type RequestDispatcher } from "./session.js";

export interface ConsoleServerOptions {
  listeners: ListenerConfig[];
  notificationBufferSize: number;
  hub: NotificationHub;
  dispatch: RequestDispatcher;
  log: Logger;
}

export class ConsoleServer {
  private readonly servers: { config: ListenerConfig; server: Server }[] = [];
  private readonly sessions = new Set<Session>();
  private connectionsTotal = 0;

  constructor(private readonly o: ConsoleServerOptions) {}

  get connections(): number {
    return this.sessions.size;
  }

  get connectionsAccepted(): number {
    return this.connectionsTotal;
  }

  async listen(): Promise<void> {
    for (const config of this.o.listeners) {
      const server = createServer({ allowHalfOpen: false }, (socket) => this.accept(config, socket));
      await this.bind(config, server);
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
      await unlink(path).catch(() => undefined);
      // No umask games: they would leak into files other code creates meanwhile. A fresh socket
      // is 0755 at most under the default umask, which no other user can connect to (connect
      // needs write permission), and gets its configured mode before this returns.
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(path, () => resolve());
      });
      await chmod(path, config.mode);
    } else {
      const { host, port } = config.url;
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen({ host, port }, () => resolve());
      });
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
      dispatch: this.o.dispatch,
      log,
    });
    this.sessions.add(session);
    void session.run().finally(() => this.sessions.delete(session));
  }

  /** Stops accepting, ends every session after flushing its output, removes Unix sockets. */
  async close(): Promise<void> {
    const closing = this.servers.map(
      ({ server }) => new Promise<void>((resolve) => server.close(() => resolve())),
    );
    for (const session of this.sessions) session.close();
    await Promise.all(closing);
    for (const { config } of this.servers) {
      if (config.url.scheme === "unix") await unlink(config.url.path).catch(() => undefined);
    }
    this.servers.length = 0;
  }
}
