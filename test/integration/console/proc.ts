/**
 * What a daemon process holds, read from /proc: open descriptors and memory. Shared by the
 * console's bounds tests; they assert bounds on these counts and sizes, never durations.
 */
import { readdir, readFile } from "node:fs/promises";
import { connect, type Socket } from "node:net";
import { waitFor as waitForCondition } from "../../helpers/wait.js";

/** Open file descriptors of `pid`. */
export async function fdCount(pid: number): Promise<number> {
  return (await readdir(`/proc/${pid}/fd`)).length;
}

/** A `/proc/<pid>/status` figure in bytes, e.g. VmRSS, or VmHWM (peak resident set). */
export async function memory(pid: number, key: "VmRSS" | "VmHWM"): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const kb = new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)?.[1];
  if (kb === undefined) throw new Error(`no ${key} in /proc/${pid}/status`);
  return Number(kb) * 1024;
}

/** Polls `check` until it returns true; throws `what` (with the last value) after `timeoutMs`. */
export async function waitUntil<T>(
  what: string,
  probe: () => Promise<T> | T,
  check: (value: T) => boolean,
  timeoutMs = 15_000,
): Promise<T> {
  let last: T | undefined;
  const found = await waitForCondition(
    async () => {
      const value = await probe();
      last = value;
      return check(value) ? { value } : undefined;
    },
    { timeoutMs, what, detail: () => `last value: ${String(last)}` },
  );
  return found.value;
}

/**
 * A raw connection to a Unix socket URL whose end the test controls fully. It discards what it
 * receives (so it notices when the daemon closes it), unless `read` is false: a peer that
 * never reads, which notices a close only when a write fails.
 */
export async function rawSocket(
  url: string,
  options: { read?: boolean; allowHalfOpen?: boolean } = {},
): Promise<Socket> {
  const socket = connect({ path: url.replace(/^unix:\/\//, ""), allowHalfOpen: options.allowHalfOpen });
  socket.on("error", () => undefined);
  if (options.read !== false) socket.resume();
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  return socket;
}

/** Resolves when the socket has closed (the daemon closed it, or the test destroyed it). */
export function closed(socket: Socket): Promise<void> {
  return socket.closed ? Promise.resolve() : new Promise((resolve) => socket.once("close", () => resolve()));
}

/** `promise`, or a rejection naming `what` after `timeoutMs`. */
export async function within<T>(what: string, promise: Promise<T>, timeoutMs = 15_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export const CONNECT = `{"connect":{"version":"0.9.2","subscribe_notifications":false}}\n`;
