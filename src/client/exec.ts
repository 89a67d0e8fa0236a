/**
 * `exec` (Skiff): runs a process in a running container and streams its stdio. An exec takes a
 * connection of its own: after the `ok` response the connection carries the exec stream's
 * frames (protocol/exec.ts) until the process's exit status, then the daemon closes it.
 *
 *   const e = await exec(url, "web:1.0.0", ["sh", "-c", "echo hi"]);
 *   e.stdout.pipe(process.stdout);
 *   const status = await e.status; // {type: "exit", code: 0} or {type: "signalled", signal: 9}
 */
import type { Socket } from "node:net";
import { PassThrough, type Readable } from "node:stream";
import { decodeMessage, encodeMessage } from "../protocol/codec.js";
import type { ContainerId } from "../protocol/container.js";
import { FrameDecoder, MAX_FRAME_PAYLOAD, encodeClientFrame, type ClientFrame } from "../protocol/exec.js";
import { LineReader } from "../protocol/framing.js";
import type { ExecRequest, ExitStatus } from "../protocol/messages.js";
import { ConnectionClosedError, PermissionDeniedError, RuntimeError, SkiffError } from "./errors.js";
import { handledElsewhere, messageOf, settled } from "../common/errors.js";
import { consoleHandshake, dialConsole } from "./connection.js";

export interface ExecOptions {
  /** Added to (replacing) the container's environment. */
  environment?: Record<string, string>;
  /** Absolute working directory (default the container's). */
  cwd?: string;
  /** Run as this uid (gid defaults to the uid). */
  uid?: number;
  gid?: number;
  /** A pseudo-terminal: stdout carries everything the terminal shows; stderr stays empty. */
  tty?: boolean;
  /** Whether stdin will be sent; without it the process's stdin is at EOF from the start. */
  stdin?: boolean;
  /** Milliseconds for connecting and for the process to start; 0 disables. Default 10 s. */
  timeout?: number;
  /** Closes the stream (the daemon then hangs the process up). */
  signal?: AbortSignal;
}

export interface ExecSession {
  /** The process's pid on the daemon's host. */
  readonly pid: number;
  readonly stdout: Readable;
  readonly stderr: Readable;
  /**
   * The exact exit status; rejects when the stream broke before it came. Settles after the
   * output has been delivered to its readers (`on("data")`, `pipe`, attached in the turn `exec`
   * resolved in).
   */
  readonly status: Promise<ExitStatus>;
  /** Sends stdin; resolves once the socket took it (back-pressure). */
  write(data: Buffer | string): Promise<void>;
  /** No more stdin (with a tty: the terminal reads one end-of-file character). */
  endStdin(): void;
  /** The terminal's window size (tty); rows and columns 1-65535, else RangeError. */
  resize(rows: number, cols: number): void;
  /** Sends `signal` (1-64) to the process. */
  kill(signal: number): void;
  /** Closes the stream: the daemon sends SIGHUP, then SIGKILL. */
  close(): void;
}

export async function exec(
  url: string,
  container: ContainerId,
  command: string[],
  options: ExecOptions = {},
): Promise<ExecSession> {
  const timeout = options.timeout ?? 10_000;
  const { socket, connected, onAbort, timer } = dialConsole(
    url,
    timeout,
    options.signal,
    `exec in ${container}: no answer within ${timeout} ms`,
  );
  const request: ExecRequest = {
    type: "exec",
    container,
    command,
    environment: options.environment ?? {},
    cwd: options.cwd ?? null,
    uid: options.uid ?? null,
    gid: options.gid ?? null,
    tty: options.tty ?? false,
    stdin: options.stdin ?? false,
  };
  let reader: LineReader;
  let pid: number;
  try {
    await connected;
    reader = new LineReader(socket, 16 * 1024 * 1024);
    await consoleHandshake(socket, reader, false);
    socket.write(encodeMessage({ type: "request", request }));
    let answer;
    do answer = await nextMessage(reader);
    while (answer.type === "notification");
    if (answer.type !== "response") throw new SkiffError(`unexpected ${answer.type} instead of a response`);
    const response = answer.response;
    if (response.type === "permission_denied") throw new PermissionDeniedError(response.request);
    if (response.type === "error") throw new RuntimeError(response.error);
    if (response.type !== "exec") throw new SkiffError(`expected an exec response, got ${response.type}`);
    if (response.result.type === "error") throw new RuntimeError(response.result.error);
    pid = response.result.pid;
  } catch (e) {
    socket.destroy();
    options.signal?.removeEventListener("abort", onAbort);
    if (e instanceof SkiffError) throw e;
    throw new ConnectionClosedError(`exec in ${container}: ${messageOf(e)}`);
  } finally {
    clearTimeout(timer);
  }
  socket.on("error", () => undefined); // reported through `status`
  const stream = new Stream(socket, reader, pid);
  // `signal` closes the stream until it ends.
  void settled(stream.status).finally(() => options.signal?.removeEventListener("abort", onAbort));
  return stream;
}

async function nextMessage(reader: LineReader) {
  for (;;) {
    const line = await reader.nextLine();
    if (line === null) throw new ConnectionClosedError("the daemon closed the connection");
    if (line.trim() !== "") return decodeMessage(line);
  }
}

class Stream implements ExecSession {
  readonly stdout = new PassThrough();
  readonly stderr = new PassThrough();
  readonly status: Promise<ExitStatus>;

  constructor(
    private readonly socket: Socket,
    reader: LineReader,
    readonly pid: number,
  ) {
    // Frames are read from the next turn of the event loop on: code that attaches to stdout and
    // stderr right after `await exec(...)` is flowing before the first frame, so `status`
    // settles only after that output has been delivered to it.
    this.status = new Promise((resolve) => setImmediate(resolve)).then(() => this.read(reader));
    handledElsewhere(this.status);
  }

  private async read(reader: LineReader): Promise<ExitStatus> {
    const decoder = FrameDecoder.daemon();
    try {
      for (;;) {
        const chunk = await reader.readChunk(MAX_FRAME_PAYLOAD);
        if (chunk === null) throw new ConnectionClosedError("the exec stream ended without an exit status");
        decoder.push(chunk);
        for (let frame = decoder.next(); frame !== undefined; frame = decoder.next()) {
          switch (frame.type) {
            case "stdout":
            case "stderr": {
              const out = frame.type === "stdout" ? this.stdout : this.stderr;
              if (!out.write(frame.data)) await new Promise((r) => out.once("drain", r));
              break;
            }
            case "exit":
              await this.delivered();
              return frame.status;
            case "error":
              throw new SkiffError(`exec stream failed: ${frame.message}`);
          }
        }
      }
    } finally {
      this.stdout.end();
      this.stderr.end();
      this.socket.destroy();
    }
  }

  /**
   * Ends stdout and stderr and waits until the readers that consume them (`on("data")`, `pipe`,
   * also while they pause) have seen the end, so `status` settles after the output is
   * delivered. Output nobody reads stays buffered.
   */
  private async delivered(): Promise<void> {
    const streams = [this.stdout, this.stderr];
    for (const s of streams) s.end();
    await Promise.all(
      streams
        .filter((s) => s.readableFlowing !== null && !s.readableEnded)
        .map((s) => new Promise((resolve) => s.once("end", resolve))),
    );
  }

  private send(frame: ClientFrame): Promise<void> {
    if (this.socket.destroyed) return Promise.resolve();
    let ok = true;
    for (const b of encodeClientFrame(frame)) ok = this.socket.write(b);
    if (ok) return Promise.resolve();
    return new Promise((resolve) => {
      this.socket.once("drain", resolve);
      this.socket.once("close", resolve);
    });
  }

  write(data: Buffer | string): Promise<void> {
    return this.send({ type: "stdin", data: Buffer.isBuffer(data) ? data : Buffer.from(data) });
  }

  endStdin(): void {
    void this.send({ type: "stdin_eof" });
  }

  resize(rows: number, cols: number): void {
    const valid = (n: number): boolean => Number.isInteger(n) && n >= 1 && n <= 65535;
    if (!valid(rows) || !valid(cols))
      throw new RangeError(`window size ${rows}x${cols} is not 1-65535 each way`);
    void this.send({ type: "resize", rows, cols });
  }

  kill(signal: number): void {
    void this.send({ type: "signal", signal });
  }

  close(): void {
    this.socket.destroy();
  }
}
