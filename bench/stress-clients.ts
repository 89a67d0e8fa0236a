/**
 * Raw NDJSON clients of the stress harness (bench/stress.ts): the notification watcher, which
 * reads the wire itself so that fields the typed client does not know yet (an instance id in
 * `exit`) are seen, and the hostile clients of `--mode monkey`. Every hostile client is bounded
 * in bytes, connections and time, and talks to the daemon's Unix socket only.
 */
import { connect as netConnect, type Socket } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { PROTOCOL_VERSION } from "../src/protocol/version.js";
import type { Counts, ExitLedger, Rng } from "./stress-stats.js";

/**
 * A `connect` line. The notification watcher speaks Skiff's dialect, whose exit notifications carry
 * the instance id that tells a permitted repeat from a real duplicate; hostile clients speak
 * Northstar's, the dialect a client that asks for nothing gets (docs/console.md, "Dialects").
 */
const CONNECT = (subscribe: boolean, dialect?: "skiff"): string =>
  `${JSON.stringify({ connect: { version: PROTOCOL_VERSION, subscribe_notifications: subscribe, ...(dialect ? { dialect } : {}) } })}\n`;
/** Our own limit for a line from the daemon (its notifications are small). */
const MAX_LINE = 16 << 20;

/** Connects to a Unix socket; rejects on error or after `timeoutMs`. */
export function openSocket(path: string, timeoutMs = 5000): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ path });
    const timer = setTimeout(() => socket.destroy(new Error("connect timeout")), timeoutMs);
    socket.once("connect", () => {
      clearTimeout(timer);
      socket.off("error", reject);
      socket.on("error", () => undefined); // reported through "close"
      resolve(socket);
    });
    socket.once("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

/** Calls `onLine` for each line of `socket`; a line over MAX_LINE destroys it. */
function readLines(socket: Socket, onLine: (line: string) => void): void {
  let buffer = "";
  socket.setEncoding("utf8");
  socket.on("data", (chunk: string) => {
    buffer += chunk;
    let nl: number;
    while ((nl = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      if (line.trim() !== "") onLine(line);
    }
    if (buffer.length > MAX_LINE) socket.destroy(new Error("line too long"));
  });
}

/** The first string value under a key named `instance`, `instance_id` or `instanceId`, anywhere. */
export function findInstanceId(value: unknown, depth = 0): string | undefined {
  if (depth > 8 || value === null || typeof value !== "object") return undefined;
  for (const [key, inner] of Object.entries(value as Record<string, unknown>)) {
    if ((key === "instance" || key === "instance_id" || key === "instanceId") && inner !== null) {
      if (typeof inner === "string" || typeof inner === "number") return String(inner);
    }
    const found = findInstanceId(inner, depth + 1);
    if (found !== undefined) return found;
  }
  return undefined;
}

/** The container of a `started`/`exit` payload: `C`, `[C, status]` or `{container: C, ...}`. */
function containerOf(payload: unknown): string | undefined {
  if (typeof payload === "string") return payload;
  if (Array.isArray(payload) && typeof payload[0] === "string") return payload[0];
  if (payload !== null && typeof payload === "object") {
    const c = (payload as { container?: unknown }).container;
    if (typeof c === "string") return c;
  }
  return undefined;
}

/**
 * Subscribes to notifications and keeps doing so across daemon restarts (it reconnects every
 * 10 ms while the socket is gone, so that exits announced at startup reach it). Feeds `started`
 * and `exit` into the ledger and counts every notification by kind.
 */
export class NotificationWatcher {
  private socket: Socket | undefined;
  private stopped = false;
  private readonly waiters = new Set<() => void>();
  lagged = 0;
  missed = 0;
  connections = 0;

  constructor(
    private readonly socketPath: string,
    private readonly ledger: ExitLedger,
    readonly kinds: Counts,
  ) {}

  /** Resolves once subscribed; then keeps the subscription up until `stop()`. */
  async start(): Promise<void> {
    await this.connect();
  }

  private async connect(): Promise<void> {
    while (!this.stopped) {
      try {
        const socket = await openSocket(this.socketPath, 2000);
        const acked = new Promise<boolean>((resolve) => {
          let first = true;
          readLines(socket, (line) => {
            if (first) {
              first = false;
              resolve(line.includes("connect_ack"));
              return;
            }
            this.onLine(line);
          });
          socket.once("close", () => resolve(false));
        });
        socket.write(CONNECT(true, "skiff"));
        if (!(await acked)) {
          socket.destroy();
          throw new Error("handshake refused");
        }
        this.socket = socket;
        this.connections++;
        socket.once("close", () => {
          this.socket = undefined;
          if (!this.stopped) void this.connect();
        });
        return;
      } catch {
        await sleep(10);
      }
    }
  }

  private onLine(line: string): void {
    let message: { notification?: unknown };
    try {
      message = JSON.parse(line) as { notification?: unknown };
    } catch {
      this.kinds.add("unparsable");
      return;
    }
    const n = message.notification;
    if (n === undefined) return;
    if (typeof n === "string") {
      this.kinds.add(n);
      return;
    }
    const [kind, payload] = Object.entries(n as Record<string, unknown>)[0] ?? ["?", undefined];
    this.kinds.add(kind);
    const container = containerOf(payload);
    if (kind === "lagged") {
      this.lagged++;
      this.missed += Number((payload as { missed?: number }).missed ?? 0);
    } else if (kind === "started" && container !== undefined) {
      this.ledger.recordStarted(container);
    } else if (kind === "exit" && container !== undefined) {
      this.ledger.recordExit(
        container,
        findInstanceId(payload),
        JSON.stringify(payload).includes('"reason":"error"'),
      );
    }
    for (const wake of this.waiters) wake();
  }

  /** Resolves when `predicate` holds (checked after each notification), or false after `timeoutMs`. */
  async waitFor(predicate: () => boolean, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate()) {
      const left = deadline - Date.now();
      if (left <= 0 || this.stopped) return predicate();
      let wake!: () => void;
      const woken = new Promise<void>((resolve) => (wake = resolve));
      this.waiters.add(wake);
      await Promise.race([woken, sleep(Math.min(left, 250))]);
      this.waiters.delete(wake);
    }
    return true;
  }

  stop(): void {
    this.stopped = true;
    this.socket?.destroy();
    for (const wake of this.waiters) wake();
  }
}

// ---------------------------------------------------------------------------------------------
// Hostile clients

export const HOSTILE_KINDS = [
  "oversized-line",
  "oversized-handshake",
  "malformed",
  "never-reads",
  "idle-crowd",
  "slow-writer",
  "half-close",
] as const;
export type HostileKind = (typeof HOSTILE_KINDS)[number];

/** What happened to a hostile client: the daemon closed it, answered, or we gave up waiting. */
export type HostileOutcome = "closed-by-daemon" | "answered" | "still-open" | "connect-failed";

/** Writes `bytes` bytes of `fill` (64 KiB chunks, honouring back-pressure) unless the socket closes. */
async function flood(socket: Socket, prefix: string, bytes: number, deadline: number): Promise<void> {
  const chunk = Buffer.alloc(64 << 10, "a");
  if (!socket.write(prefix)) await drained(socket, deadline);
  for (
    let sent = prefix.length;
    sent < bytes && !socket.destroyed && Date.now() < deadline;
    sent += chunk.length
  ) {
    if (!socket.write(chunk)) await drained(socket, deadline);
  }
}

function drained(socket: Socket, deadline: number): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      socket.off("drain", done);
      socket.off("close", done);
      resolve();
    };
    const timer = setTimeout(done, Math.max(0, deadline - Date.now()));
    socket.once("drain", done);
    socket.once("close", done);
  });
}

/**
 * Resolves "closed-by-daemon" when the daemon ends or resets the connection within `ms` (its
 * end may arrive while our side still has bytes to send), else "still-open".
 */
function closedWithin(socket: Socket, ms: number): Promise<HostileOutcome> {
  if (socket.destroyed || socket.readableEnded) return Promise.resolve("closed-by-daemon");
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      resolve("closed-by-daemon");
    };
    const timer = setTimeout(() => {
      socket.off("close", done);
      socket.off("end", done);
      resolve("still-open");
    }, ms);
    socket.once("close", done);
    socket.once("end", done);
  });
}

/** Malformed lines after a valid handshake; each must get an error answer or be survivable. */
function malformedLines(rng: Rng): string[] {
  const deep = rng.int(1000, 200_000);
  return [
    "garbage",
    "{",
    '{"request":',
    "[]",
    "null",
    '"request"',
    '{"request":"list","request":"list"}',
    '{"request":{"start":{"container":"../../../etc:1.0.0"}}}',
    '{"request":{"inspect":{"container":"a/../../b:1.0.0"}}}',
    `{"request":{"inspect":{"container":"${"x".repeat(rng.int(1000, 900_000))}:1.0.0"}}}`,
    `${"[".repeat(deep)}${"]".repeat(deep)}`,
    `{"request":${"{".repeat(10_000)}`,
    '{"request":{"kill":{"container":"a:1.0.0","signal":1e400}}}',
    '{"request":{"kill":{"container":"a:1.0.0","signal":-1}}}',
    '{"__proto__":{"request":"list"}}',
    '{"request":{"constructor":{"prototype":{}}}}',
    '{"request":{"install":{"repository":"default","size":-1}}}',
    '{"request":{"logs":{"container":"a:1.0.0","lines":99999999999}}}',
    '{"connect":{"version":"0.9.2","subscribe_notifications":true}}',
    "\u0000\u0001\u0002",
    "\ud800",
  ];
}

/**
 * Runs one hostile client of `kind` to completion (at most ~10 s). `ok` counts its outcome in
 * `outcomes` as `kind:outcome`.
 */
export async function runHostile(
  kind: HostileKind,
  socketPath: string,
  rng: Rng,
  outcomes: Counts,
): Promise<void> {
  const deadline = Date.now() + 10_000;
  const count = (o: HostileOutcome): void => outcomes.add(`${kind}:${o}`);
  switch (kind) {
    case "oversized-line": {
      const socket = await openSocket(socketPath).catch(() => undefined);
      if (!socket) return count("connect-failed");
      socket.resume();
      socket.write(CONNECT(false));
      await flood(socket, '{"request":{"inspect":{"container":"', rng.int(2, 32) << 20, deadline);
      count(await closedWithin(socket, 2000));
      socket.destroy();
      return;
    }
    case "oversized-handshake": {
      const socket = await openSocket(socketPath).catch(() => undefined);
      if (!socket) return count("connect-failed");
      socket.resume();
      await flood(socket, '{"connect":{"version":"', rng.int(2, 16) << 20, deadline);
      count(await closedWithin(socket, 2000));
      socket.destroy();
      return;
    }
    case "malformed": {
      const socket = await openSocket(socketPath).catch(() => undefined);
      if (!socket) return count("connect-failed");
      const lines: string[] = [];
      readLines(socket, (line) => lines.push(line));
      socket.write(CONNECT(false));
      for (const line of malformedLines(rng)) {
        if (socket.destroyed) break;
        if (!socket.write(`${line}\n`)) await drained(socket, deadline);
      }
      // A well-formed request after all that: is the connection still served?
      socket.write('{"request":"list"}\n');
      const answered = await new Promise<boolean>((resolve) => {
        const poll = setInterval(() => {
          if (lines.some((l) => l.includes('"list"'))) finish(true);
          else if (socket.destroyed || Date.now() > deadline) finish(false);
        }, 20);
        const finish = (v: boolean): void => {
          clearInterval(poll);
          resolve(v);
        };
      });
      count(answered ? "answered" : socket.destroyed ? "closed-by-daemon" : "still-open");
      socket.destroy();
      return;
    }
    case "never-reads": {
      // Subscribes and floods requests but never reads: the daemon must not buffer without bound.
      const socket = await openSocket(socketPath).catch(() => undefined);
      if (!socket) return count("connect-failed");
      socket.pause();
      socket.write(CONNECT(true));
      const request = Buffer.from('{"request":"list"}\n'.repeat(1000));
      for (let i = 0; i < 50 && !socket.destroyed && Date.now() < deadline - 5000; i++) {
        if (!socket.write(request)) await drained(socket, deadline - 5000);
      }
      count(await closedWithin(socket, rng.int(2000, 5000)));
      socket.destroy();
      return;
    }
    case "idle-crowd": {
      const sockets: Socket[] = [];
      const n = rng.int(50, 200);
      for (let i = 0; i < n && Date.now() < deadline; i++) {
        const s = await openSocket(socketPath).catch(() => undefined);
        if (!s) break;
        s.resume();
        if (i % 2 === 0) s.write(CONNECT(rng.next() < 0.5));
        sockets.push(s);
      }
      await sleep(rng.int(1000, 6000));
      const closed = sockets.filter((s) => s.destroyed).length;
      outcomes.add(`${kind}:connections`, sockets.length);
      outcomes.add(`${kind}:closed-by-daemon`, closed);
      for (const s of sockets) s.destroy();
      return;
    }
    case "slow-writer": {
      const socket = await openSocket(socketPath).catch(() => undefined);
      if (!socket) return count("connect-failed");
      socket.resume();
      const text = CONNECT(false);
      for (let i = 0; i < text.length && !socket.destroyed && Date.now() < deadline - 1000; i++) {
        socket.write(text[i]!);
        await sleep(100);
      }
      count(await closedWithin(socket, 500));
      socket.destroy();
      return;
    }
    case "half-close": {
      const socket = await openSocket(socketPath).catch(() => undefined);
      if (!socket) return count("connect-failed");
      const lines: string[] = [];
      readLines(socket, (line) => lines.push(line));
      socket.end(`${CONNECT(false)}{"request":"list"}\n{"request":"repositories"}\n`);
      const outcome = await closedWithin(socket, 3000);
      count(lines.length >= 3 ? "answered" : outcome);
      socket.destroy();
      return;
    }
  }
}
