import { fstatSync, writeSync } from "node:fs";
import { destination, pino, type DestinationStream, type Logger } from "pino";
import type { LogLevel } from "./config/schema.js";

/**
 * Structured JSON logs on stderr, written synchronously so nothing is lost on a crash. When
 * stderr is journald's stream (`JOURNAL_STREAM` names its device and inode, as systemd sets it
 * for `StandardError=journal`), or with `journal: true`, every line starts with the sd-daemon(3)
 * priority prefix `<N>` of its level, so journald files it at that priority (`journalctl -p err`).
 */
export function createLogger(level: LogLevel, options: { journal?: boolean } = {}): Logger {
  const journal = options.journal ?? stderrIsJournal(process.env.JOURNAL_STREAM);
  const base = { level, base: { pid: process.pid } };
  return journal ? pino(base, journalDestination(2)) : pino(base, destination({ fd: 2, sync: true }));
}

/** syslog priority (sd-daemon(3) `<N>`) of a pino level number: fatal 2 (crit) … debug/trace 7. */
export function journalPriority(pinoLevel: number): number {
  if (pinoLevel >= 60) return 2; // fatal: crit
  if (pinoLevel >= 50) return 3; // error: err
  if (pinoLevel >= 40) return 4; // warn: warning
  if (pinoLevel >= 30) return 6; // info: info
  return 7; // debug, trace: debug
}

/** True when `JOURNAL_STREAM` ("DEV:INODE") names what fd 2 is (systemd.exec(5)). */
export function stderrIsJournal(journalStream: string | undefined): boolean {
  const match = journalStream === undefined ? null : /^([0-9]+):([0-9]+)$/.exec(journalStream);
  if (!match) return false;
  try {
    const st = fstatSync(2, { bigint: true });
    return st.dev === BigInt(match[1]!) && st.ino === BigInt(match[2]!);
  } catch {
    return false;
  }
}

/** pino writes one JSON line per record, `"level":N` first after `{`: the prefix comes from it. */
const LEVEL_RE = /^\{"level":([0-9]+)/;

/** A pino destination writing `<N>` + the line, synchronously, to `fd`. */
export function journalDestination(fd: number): DestinationStream {
  return {
    write(line: string): void {
      const level = LEVEL_RE.exec(line);
      writeAll(fd, Buffer.from(`<${journalPriority(level ? Number(level[1]) : 30)}>${line}`));
    },
  };
}

/** How long a full journald socket is waited for between tries (sonic-boom does the same). */
const EAGAIN_WAIT_MS = 10;
const sleeper = new Int32Array(new SharedArrayBuffer(4));

/** Writes all of `data`, through partial writes and EAGAIN (fd 2 may be a non-blocking socket). */
function writeAll(fd: number, data: Buffer): void {
  let offset = 0;
  while (offset < data.length) {
    try {
      offset += writeSync(fd, data, offset);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EAGAIN") throw e;
      Atomics.wait(sleeper, 0, 0, EAGAIN_WAIT_MS);
    }
  }
}
