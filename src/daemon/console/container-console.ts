/**
 * Per-container consoles: a Unix socket that serves ONE container, with the permissions of its
 * manifest's `console` section. The runtime opens it before the container starts, bind-mounts
 * the socket into the container (its path in SKIFF_CONSOLE; skiff-init connects the app to it
 * and names that descriptor in NORTHSTAR_CONSOLE, as Northstar does) and closes it when the
 * container stops. Every connection on it is a Session whose peer is that container, so `ident`
 * answers the container's id; handshake, dialect, limits and options are a listener's.
 *
 * Sockets live in `<runDir>/consoles/` (mode 0700, root only), one per container, mode 0600,
 * optionally owned by the container's uid/gid so that a non-root container can connect.
 * Because the directory is private, the socket is bound without touching the process umask
 * (which is process-wide and would leak into concurrent file creation) and restricted after.
 */
import { createHash } from "node:crypto";
import { chmod, chown, mkdir, unlink } from "node:fs/promises";
import { createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import type { Logger } from "pino";
import type { Console } from "../../npk/manifest/types.js";
import type { ContainerId } from "../../protocol/container.js";
import type { Request, Response } from "../../protocol/messages.js";
import {
  FULL_PERMISSIONS,
  isPermission,
  type Permission,
  type PermissionSet,
} from "../../protocol/permissions.js";
import type { ConsoleOptions } from "../config/schema.js";
import type { Peer } from "../events/types.js";
import type { NotificationHub } from "./hub.js";
import { Session, type RequestIo } from "./session.js";
import { MAX_UNIX_SOCKET_PATH } from "../../common/unix-socket.js";
import { resolveWithin } from "../../common/paths.js";
import { listen } from "../../common/listen.js";
import { bestEffort } from "../errors.js";
import { logDrops } from "./server.js";

/**
 * Like a listener's dispatcher, plus the id of the session the request came on (so that
 * state held per connection, such as wake locks, can be tied to it). A plain
 * `RequestDispatcher` fits, since it may ignore the last argument.
 */
export type ContainerRequestDispatcher = (
  peer: Peer,
  request: Request,
  io: RequestIo,
  sessionId: number,
) => Promise<Response>;

export interface ContainerConsolesOptions {
  /** The daemon's run directory; sockets go to `<runDir>/consoles/`. */
  runDir: string;
  /** Handshake timeout and limits of every container console. */
  options: ConsoleOptions;
  notificationBufferSize: number;
  hub: NotificationHub;
  dispatch: ContainerRequestDispatcher;
  log: Logger;
  /** Called once per connection after it has ended (its requests are answered or abandoned). */
  onSessionClosed?: (container: ContainerId, sessionId: number) => void;
}

/** Owner of a console socket (the container's uid and gid). Root when omitted. */
export interface SocketOwner {
  uid: number;
  gid: number;
}

interface OpenConsole {
  container: ContainerId;
  socketPath: string;
  server: Server;
  /** Running sessions, with the promise that settles when each has ended. */
  sessions: Map<Session, Promise<void>>;
  closing: boolean;
}

/** Converts a manifest's console permissions (Northstar's names) to a console permission set. */
export function consolePermissions(permissions: Console["permissions"]): PermissionSet {
  if (permissions === "full") return FULL_PERMISSIONS;
  const set = new Set<Permission>();
  for (const name of permissions) {
    // Both lists are Northstar's fifteen names; a mismatch is a programming error.
    if (!isPermission(name)) throw new TypeError(`unknown console permission ${JSON.stringify(name)}`);
    set.add(name);
  }
  return set;
}

/**
 * The socket of `container`'s console: `<dir>/<name:version>.sock`, or, when that does not fit
 * in a socket address (names may have 1024 characters), a name derived from the id's hash.
 */
export function containerConsolePath(dir: string, container: ContainerId): string {
  // The id comes from package data: the one safe join refuses any escape (common/paths.ts).
  const plain = `${container}.sock`;
  if (Buffer.byteLength(join(dir, plain)) <= MAX_UNIX_SOCKET_PATH) return resolveWithin(dir, plain);
  const digest = createHash("sha256").update(container).digest("hex").slice(0, 32);
  return resolveWithin(dir, `${digest}.sock`);
}

export class ContainerConsoles {
  readonly dir: string;
  private readonly consoles = new Map<ContainerId, OpenConsole>();
  // INVARIANTS: open and close of one container run one after the other (queued here), so a
  // close never unlinks the socket of a later open. After closeAll, open refuses.
  private readonly queues = new Map<ContainerId, Promise<unknown>>();
  private nextSessionId = 1;
  private shutDown = false;

  constructor(private readonly o: ContainerConsolesOptions) {
    this.dir = join(o.runDir, "consoles");
  }

  /** Containers with an open console. */
  get containers(): ContainerId[] {
    return [...this.consoles.keys()];
  }

  /** Connections currently served on `container`'s console. */
  connections(container: ContainerId): number {
    return this.consoles.get(container)?.sessions.size ?? 0;
  }

  /**
   * Creates `container`'s console socket and starts serving it with exactly `permissions`.
   * Fails if the container already has one, or after closeAll.
   */
  open(
    container: ContainerId,
    permissions: Console["permissions"],
    owner?: SocketOwner,
  ): Promise<{ socketPath: string }> {
    return this.serialize(container, () => this.openNow(container, consolePermissions(permissions), owner));
  }

  /**
   * Stops accepting, ends the container's sessions (after flushing their output; a peer that
   * keeps its side open is cut after a second) and removes the socket. Resolves once every
   * session has ended and `onSessionClosed` has been called for it. No-op without a console.
   */
  close(container: ContainerId): Promise<void> {
    return this.serialize(container, () => this.closeNow(container));
  }

  /** Closes every console and refuses new ones (daemon shutdown). */
  async closeAll(): Promise<void> {
    this.shutDown = true;
    const containers = new Set([...this.consoles.keys(), ...this.queues.keys()]);
    await Promise.all([...containers].map((c) => this.close(c)));
  }

  private serialize<T>(container: ContainerId, operation: () => Promise<T>): Promise<T> {
    const previous = this.queues.get(container) ?? Promise.resolve();
    const result = previous.then(operation);
    const settled = result.then(
      () => undefined,
      () => undefined,
    );
    this.queues.set(container, settled);
    void settled.then(() => {
      if (this.queues.get(container) === settled) this.queues.delete(container);
    });
    return result;
  }

  private async openNow(
    container: ContainerId,
    permissions: PermissionSet,
    owner: SocketOwner | undefined,
  ): Promise<{ socketPath: string }> {
    if (this.shutDown) throw new Error(`cannot open a console for ${container}: the daemon is shutting down`);
    if (this.consoles.has(container)) throw new Error(`container ${container} already has a console`);
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await chmod(this.dir, 0o700);
    const socketPath = containerConsolePath(this.dir, container);
    // Left over by a daemon that crashed.
    await bestEffort(this.o.log, `removing a stale socket ${socketPath}`, unlink(socketPath));
    const entry: OpenConsole = {
      container,
      socketPath,
      server: createServer({ allowHalfOpen: false }, (socket) => this.accept(entry, permissions, socket)),
      sessions: new Map(),
      closing: false,
    };
    // A container is as untrusted as any client: its connections are bounded like a listener's
    // (`[container_console] max_connections`); Node closes further ones as it accepts them.
    entry.server.maxConnections = this.o.options.maxConnections;
    logDrops(
      entry.server,
      this.o.log,
      { container },
      `refusing container console connections: ${this.o.options.maxConnections} open (max_connections)`,
    );
    await listen(entry.server, { path: socketPath });
    entry.server.on("error", (e) => this.o.log.error({ err: e, container }, "container console failed"));
    try {
      await chmod(socketPath, 0o600);
      if (owner) await chown(socketPath, owner.uid, owner.gid);
    } catch (e) {
      await new Promise<void>((resolve) => entry.server.close(() => resolve()));
      await bestEffort(this.o.log, `removing socket ${socketPath}`, unlink(socketPath));
      throw e;
    }
    this.consoles.set(container, entry);
    this.o.log.info({ container, permissions: [...permissions] }, `container console on ${socketPath}`);
    return { socketPath };
  }

  private accept(entry: OpenConsole, permissions: PermissionSet, socket: Socket): void {
    if (entry.closing) {
      socket.destroy();
      return;
    }
    const sessionId = this.nextSessionId++;
    const { container } = entry;
    const session = new Session({
      socket,
      peer: { kind: "container", container },
      permissions,
      options: this.o.options,
      notificationBufferSize: this.o.notificationBufferSize,
      hub: this.o.hub,
      dispatch: (peer, request, io) => this.o.dispatch(peer, request, io, sessionId),
      log: this.o.log.child({ container, session: sessionId }),
    });
    const ended = session.run().finally(() => {
      entry.sessions.delete(session);
      try {
        this.o.onSessionClosed?.(container, sessionId);
      } catch (e) {
        this.o.log.error({ err: e, container, session: sessionId }, "onSessionClosed failed");
      }
    });
    entry.sessions.set(session, ended);
  }

  private async closeNow(container: ContainerId): Promise<void> {
    const entry = this.consoles.get(container);
    if (!entry) return;
    entry.closing = true;
    this.consoles.delete(container);
    const stopped = new Promise<void>((resolve) => entry.server.close(() => resolve()));
    await bestEffort(this.o.log, `removing socket ${entry.socketPath}`, unlink(entry.socketPath));
    for (const session of entry.sessions.keys()) session.close();
    await Promise.all([stopped, ...entry.sessions.values()]);
    this.o.log.info({ container }, "container console closed");
  }
}
