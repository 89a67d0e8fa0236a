/**
 * `Attach` for Skiff containers: the container's output as its monitor logs it. A Skiff
 * container's stdout and stderr are pipes to its monitor, which writes them line by line to a
 * log file (docs/monitor.md: `<time> <stdout|stderr> <text>`; CRI's format,
 * `<time> <stdout|stderr> <P|F> <text>`, is read too); its stdin is /dev/null and it has no
 * terminal. So an attach follows the log from its end at the time of the attach: each line
 * goes to the stdout or stderr stream as soon as the monitor wrote it (a line without its
 * newline waits for it), until the container stops or the client leaves. Rotation is followed:
 * the rest of the old file is read before the new one, from its start.
 *
 * Limits: reads of at most READ_CHUNK; a line longer than MAX_LINE is passed on in pieces.
 * The log is polled every POLL_MS (and read at once when fs.watch reports a change).
 */
import { watch, type FSWatcher } from "node:fs";
import { open, stat, type FileHandle } from "node:fs/promises";
import type { Logger } from "pino";
import { acceptStreams, type SpdySession } from "./session.js";
import type { RemoteCommandProtocol } from "./remotecommand.js";

const READ_CHUNK = 64 * 1024;
const MAX_LINE = 64 * 1024;
const POLL_MS = 250;

export interface AttachTarget {
  skiffId: string;
  log: { path: string; format: LogFormat };
  stdout: boolean;
  stderr: boolean;
  /** Whether the container still runs (polled: the attach ends with it). */
  running: () => boolean;
}

/** One log line: which stream, its text, and whether a newline ended it. */
export interface LogLine {
  stream: "stdout" | "stderr";
  text: string;
  newline: boolean;
}

/**
 * The two log formats: the monitor's `<time> <stream> <text>` and CRI's
 * `<time> <stream> <P|F> <text>` (P: a partial line, continued by the next one).
 */
export type LogFormat = "monitor" | "cri";

/** Pure: a line of the log format `format`, or undefined for anything else. */
export function parseLogLine(line: string, format: LogFormat): LogLine | undefined {
  const first = line.indexOf(" ");
  const second = first < 0 ? -1 : line.indexOf(" ", first + 1);
  if (second < 0) {
    // "<time> <stream>" with empty text
    const stream = line.slice(first + 1);
    if (format === "cri") return undefined; // the tag is missing
    return stream === "stdout" || stream === "stderr" ? { stream, text: "", newline: true } : undefined;
  }
  const stream = line.slice(first + 1, second);
  if (stream !== "stdout" && stream !== "stderr") return undefined;
  const rest = line.slice(second + 1);
  if (format === "monitor") return { stream, text: rest, newline: true };
  const tag = /^([PF])(?: |$)/.exec(rest);
  return tag === null ? undefined : { stream, text: rest.slice(2), newline: tag[1] === "F" };
}

/** Serves one attach session; resolves when it is over (the connection is closed by then). */
export async function serveAttach(o: {
  session: SpdySession;
  protocol: RemoteCommandProtocol;
  target: AttachTarget;
  streamTimeoutMs: number;
  log: Logger;
}): Promise<void> {
  const { session, target, log } = o;
  const expected = new Set([
    "error",
    ...(target.stdout ? ["stdout"] : []),
    ...(target.stderr ? ["stderr"] : []),
  ]);
  const streams = await acceptStreams(session, expected, o.streamTimeoutMs);
  if (streams === undefined) {
    session.close();
    return;
  }

  const follower = new LogFollower(target.log.path, target.log.format, (line) => {
    const stream = streams.get(line.stream);
    if (stream !== undefined && !stream.writable.writableEnded)
      stream.writable.write(line.newline ? `${line.text}\n` : line.text);
  });
  let stopped = false;
  const stop = (): void => {
    stopped = true;
  };
  session.once("end", stop);
  try {
    await follower.start();
    log.info({ container: target.skiffId }, "attach started");
    while (!stopped && target.running()) await follower.poll(POLL_MS);
    await follower.poll(0); // what the container wrote last
    const error = streams.get("error")!;
    const status =
      o.protocol === "v4.channel.k8s.io" ? JSON.stringify({ metadata: {}, status: "Success" }) : undefined;
    for (const [type, stream] of streams) if (type !== "error") stream.writable.end();
    await new Promise<void>((resolve) =>
      status === undefined ? error.writable.end(resolve) : error.writable.end(Buffer.from(status), resolve),
    );
  } catch (e) {
    log.info({ err: e }, "attach: cannot follow the container's log");
    const error = streams.get("error")!;
    const message = `error attaching to container: ${e instanceof Error ? e.message : String(e)}`;
    const text =
      o.protocol === "v4.channel.k8s.io"
        ? JSON.stringify({ metadata: {}, status: "Failure", message, reason: "InternalError", code: 500 })
        : message;
    error.writable.end(Buffer.from(text));
  } finally {
    session.off("end", stop);
    await follower.close();
    session.close();
  }
}

/**
 * Follows a log file from its current end: `poll(ms)` waits up to `ms` (less when fs.watch
 * reports a change) and hands out every complete line written since.
 */
class LogFollower {
  private file: FileHandle | undefined;
  private ino = 0;
  private offset = 0;
  private pending = "";
  /** The stream of an overlong line whose rest is still to come. */
  private carry: LogLine["stream"] | undefined;
  private watcher: FSWatcher | undefined;
  private wake: (() => void) | undefined;

  constructor(
    private readonly path: string,
    private readonly format: LogFormat,
    private readonly onLine: (line: LogLine) => void,
  ) {}

  async start(): Promise<void> {
    await this.reopen(true);
    try {
      this.watcher = watch(this.path, { persistent: false }, () => this.wake?.());
      this.watcher.on("error", () => undefined);
    } catch {
      // No inotify for it: polling alone.
    }
  }

  async poll(ms: number): Promise<void> {
    if (ms > 0)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, ms);
        function done(): void {
          clearTimeout(timer);
          resolve();
        }
        this.wake = done;
      });
    this.wake = undefined;
    await this.drain();
    // Rotated (a new file at the path) or truncated: the old one is finished, the new one read
    // from its start.
    const now = await stat(this.path).catch(() => undefined);
    if (now !== undefined && (now.ino !== this.ino || now.size < this.offset)) {
      await this.reopen(false);
      await this.drain();
    }
  }

  async close(): Promise<void> {
    this.watcher?.close();
    this.wake?.();
    await this.file?.close();
    this.file = undefined;
  }

  private async reopen(atEnd: boolean): Promise<void> {
    await this.file?.close();
    this.file = await open(this.path, "r");
    const st = await this.file.stat();
    this.ino = st.ino;
    this.offset = atEnd ? st.size : 0;
    this.pending = "";
    this.carry = undefined;
  }

  private async drain(): Promise<void> {
    if (this.file === undefined) return;
    const buffer = Buffer.alloc(READ_CHUNK);
    for (;;) {
      const { bytesRead } = await this.file.read(buffer, 0, READ_CHUNK, this.offset);
      if (bytesRead === 0) return;
      this.offset += bytesRead;
      this.pending += buffer.toString("utf8", 0, bytesRead);
      for (let nl = this.pending.indexOf("\n"); nl >= 0; nl = this.pending.indexOf("\n")) {
        const text = this.pending.slice(0, nl);
        this.pending = this.pending.slice(nl + 1);
        const line =
          this.carry === undefined
            ? parseLogLine(text, this.format)
            : { stream: this.carry, text, newline: true };
        this.carry = undefined;
        if (line !== undefined) this.onLine(line);
      }
      if (this.pending.length > MAX_LINE) {
        // An overlong line goes on in pieces, its rest to the same stream.
        const piece = this.pending;
        this.pending = "";
        const line =
          this.carry === undefined
            ? parseLogLine(piece, this.format)
            : { stream: this.carry, text: piece, newline: false };
        if (line !== undefined) {
          this.onLine({ ...line, newline: false });
          this.carry = line.stream;
        }
      }
    }
  }
}
