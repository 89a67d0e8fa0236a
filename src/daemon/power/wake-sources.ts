// Watches the wake sources of `add_wake_source`: a FIFO, a Unix socket the daemon listens on, or a timer.
// It only reports fires; what a fire means (wake a suspended container, or nothing) is the state machine's.
// `proxy` sources are not watched here: they fire from the proxy counter.
//
// INVARIANTS:
// - After close() has been called, onFire is never called again (a fire already scheduled is dropped):
//   removing a source takes effect at once.
// - Input that arrives within one turn of the event loop fires once; the input itself is read and dropped,
//   so a writer never blocks on a full FIFO or socket.
import { constants, open as openCallback, close as closeCallback, type Stats } from "node:fs";
import { lstat, stat, unlink } from "node:fs/promises";
import { createConnection, createServer, Socket, type Server } from "node:net";
import { promisify } from "node:util";
import type { WakeSource } from "../../protocol/messages.js";
import { listen } from "../../common/listen.js";
import { ifExists } from "../../common/errors.js";

export interface WakeSourceHandle {
  /** Stops watching; idempotent. Removes the socket the daemon created for a missing path. */
  close(): Promise<void>;
}

export interface WatchWakeSourceOptions {
  /** Aborting while the watch is being set up rejects with the abort reason; afterwards it closes the handle. */
  signal?: AbortSignal;
  /** The watch failed after it was set up (e.g. the FIFO could not be reopened) and has stopped. */
  onError?: (error: Error) => void;
}

const openFd = promisify(openCallback);
const closeFd = promisify(closeCallback);
// setTimeout fires at once for delays above 2^31-1 ms; longer timers are re-armed in steps of at most this.
const MAX_TIMER_STEP_MS = 2 ** 31 - 1;

/** Starts watching `source`; `onFire` is called each time it fires (a timer fires once). */
export async function watchWakeSource(
  source: WakeSource,
  onFire: () => void,
  options: WatchWakeSourceOptions = {},
): Promise<WakeSourceHandle> {
  const { signal } = options;
  signal?.throwIfAborted();
  const firing = new Firing(onFire);
  let watch: WakeSourceHandle;
  switch (source.type) {
    case "timer":
      watch = watchTimer(source, firing);
      break;
    case "path":
      watch = await watchPath(source.path, firing, options.onError);
      break;
    case "proxy":
      throw new Error(
        `proxy wake sources (channel ${JSON.stringify(source.channel)}) fire from the proxy counter and are not watched`,
      );
  }
  const abort = (): void => void handle.close();
  const handle: WakeSourceHandle = {
    close: async () => {
      firing.closed = true;
      signal?.removeEventListener("abort", abort);
      await watch.close();
    },
  };
  if (signal?.aborted) {
    await handle.close();
    signal.throwIfAborted();
  }
  signal?.addEventListener("abort", abort, { once: true });
  return handle;
}

/** Calls onFire unless closed; `soon` coalesces everything arriving in one event-loop turn into one fire. */
class Firing {
  closed = false;
  private scheduled = false;

  constructor(private readonly onFire: () => void) {}

  now(): void {
    if (!this.closed) this.onFire();
  }

  soon(): void {
    if (this.closed || this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.now();
    });
  }
}

function watchTimer(source: Extract<WakeSource, { type: "timer" }>, firing: Firing): WakeSourceHandle {
  const { at_ms: at, after_ms: after } = source;
  if ((at === undefined) === (after === undefined))
    throw new Error("timer wake sources need exactly one of at_ms and after_ms");
  const value = at ?? after!;
  if (!Number.isFinite(value) || value < 0) {
    throw new Error(
      `timer wake source: ${at === undefined ? "after_ms" : "at_ms"} must be a finite number >= 0, got ${value}`,
    );
  }
  // Measured against the wall clock at every step, so an absolute time stays right if the clock is set.
  const deadline = at ?? Date.now() + after!;
  let timer: NodeJS.Timeout | undefined;
  const arm = (): void => {
    const left = deadline - Date.now();
    if (left <= 0) {
      timer = undefined;
      firing.now();
      return;
    }
    timer = setTimeout(arm, Math.min(left, MAX_TIMER_STEP_MS));
  };
  timer = setTimeout(arm, 0);
  return {
    close: () => {
      clearTimeout(timer);
      return Promise.resolve();
    },
  };
}

async function watchPath(
  path: string,
  firing: Firing,
  onError?: (error: Error) => void,
): Promise<WakeSourceHandle> {
  if (!path.startsWith("/")) throw new Error(`wake source path ${JSON.stringify(path)} must be absolute`);
  const found = await lstat(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code === "ENOENT") return undefined;
    throw error;
  });
  // A symbolic link is followed to a FIFO only: a socket the daemon replaces must be the path itself.
  const target = found?.isSymbolicLink() ? await stat(path) : found;
  if (target?.isFIFO()) return watchFifo(path, firing, onError);
  if (target === undefined || found?.isSocket()) return watchSocketPath(path, firing, onError);
  throw new Error(
    `wake source path ${path} is ${describe(target)}: expected a FIFO, a Unix socket, or no file (the daemon then listens there)`,
  );
}

/** Reads the FIFO without blocking and drops what it reads. At end of file (every writer closed) it opens
 *  the FIFO again so later writers find a reader. */
async function watchFifo(
  path: string,
  firing: Firing,
  onError?: (error: Error) => void,
): Promise<WakeSourceHandle> {
  let reader: Socket | undefined;
  const failed = (error: Error): void => {
    if (!firing.closed) onError?.(new Error(`wake source FIFO ${path}: ${error.message}`));
  };
  const openReader = async (): Promise<void> => {
    // Linux reports no hang-up on a FIFO opened without writers until a writer has come and gone, so a
    // freshly opened reader waits quietly instead of seeing end-of-file again at once.
    const fd = await openFd(path, constants.O_RDONLY | constants.O_NONBLOCK);
    if (firing.closed) return closeFd(fd);
    const socket = new Socket({ fd, readable: true, writable: false });
    let ended = false;
    socket.on("data", () => firing.soon());
    socket.on("end", () => (ended = true));
    socket.on("error", failed);
    socket.on("close", () => {
      if (ended && !firing.closed) openReader().catch(failed);
    });
    reader = socket;
  };
  await openReader();
  return {
    close: () => {
      reader?.destroy();
      return Promise.resolve();
    },
  };
}

/** Listens on a Unix socket at `path`; every connection and every piece of data fires. */
async function watchSocketPath(
  path: string,
  firing: Firing,
  onError?: (error: Error) => void,
): Promise<WakeSourceHandle> {
  const connections = new Set<Socket>();
  const server = createServer((connection) => {
    connections.add(connection);
    connection.on("close", () => connections.delete(connection));
    connection.on("data", () => firing.soon());
    connection.on("error", () => connection.destroy());
    firing.soon();
  });
  const removeSocket = await listenUnixSocket(server, path);
  server.on("error", (error) => {
    if (!firing.closed) onError?.(new Error(`wake source socket ${path}: ${error.message}`));
  });
  return {
    close: async () => {
      for (const connection of connections) connection.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await removeSocket();
    },
  };
}

/**
 * Listens on a Unix socket at `path`. A socket file left by an earlier run (nothing accepts on it) is
 * replaced; one with a live listener is not. Returns a function that removes the socket file if it is
 * still the one created here.
 */
export async function listenUnixSocket(server: Server, path: string): Promise<() => Promise<void>> {
  try {
    await listen(server, { path });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EADDRINUSE") throw withPath(path, error);
    if (!(await lstat(path)).isSocket()) throw new Error(`${path}: exists and is not a socket`);
    if (await accepts(path)) throw new Error(`${path}: another process listens on this socket`);
    await unlink(path);
    await listen(server, { path }).catch((again: unknown) => Promise.reject(withPath(path, again)));
  }
  const created = await lstat(path);
  return async () => {
    // Removes the socket unless it is gone or another one took its path meanwhile.
    const now = await ifExists(lstat(path));
    if (now?.ino === created.ino && now.dev === created.dev) await ifExists(unlink(path));
  };
}

function accepts(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createConnection({ path });
    probe.once("connect", () => {
      probe.destroy();
      resolve(true);
    });
    probe.once("error", () => resolve(false));
  });
}

function withPath(path: string, error: unknown): Error {
  return new Error(`${path}: ${error instanceof Error ? error.message : String(error)}`);
}

function describe(stats: Stats): string {
  if (stats.isFile()) return "a regular file";
  if (stats.isDirectory()) return "a directory";
  if (stats.isCharacterDevice() || stats.isBlockDevice()) return "a device";
  if (stats.isSocket()) return "a socket reached through a symbolic link";
  return "neither a FIFO nor a socket";
}
