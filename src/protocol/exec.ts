/**
 * Skiff's exec stream: what follows an `exec` request's `ok` response on the same connection
 * (docs/console.md, "exec"). The connection leaves line framing for binary frames in both
 * directions, until the daemon sends `exit` (or `error`) and closes it.
 *
 * A frame is a 5-byte header, `type` (u8) and `length` (u32, big-endian), then `length` bytes:
 *
 *   client -> daemon   0x01 stdin       bytes for the process's stdin
 *                      0x02 stdin_eof   (empty) no more stdin; the process reads EOF (tty: ^D)
 *                      0x03 resize      rows (u16 BE), columns (u16 BE): the pty's window size
 *                      0x04 signal      signal number (u8, 1-64) for the process
 *   daemon -> client   0x11 stdout      process output (tty: everything the terminal shows)
 *                      0x12 stderr      process error output (none with a tty)
 *                      0x13 exit        the exit status, JSON as in `exit` notifications:
 *                                       {"exit":{"code":N}} or {"signalled":{"signal":N}}
 *                      0x14 error       UTF-8 text: the stream failed; the process was killed
 *
 * `length` is at most MAX_FRAME_PAYLOAD; a longer frame, an unknown type or a malformed payload
 * ends the stream (the daemon kills the process and closes the connection). Both sides decode
 * with `FrameDecoder`, which buffers at most one frame.
 */
import type { ExecRequest, ExitStatus } from "./messages.js";

export const FRAME_HEADER = 5;
/** Largest frame payload: both sides split their data into frames of at most this. */
export const MAX_FRAME_PAYLOAD = 64 * 1024;

/** Limits of an exec request, checked by the daemon (and the CLI) before anything runs. */
export const EXEC_LIMITS = {
  /** argv entries, and their bytes together. */
  maxArgs: 1024,
  maxArgBytes: 64 * 1024,
  /** environment entries, and their `KEY=VALUE` bytes together. */
  maxEnv: 1024,
  maxEnvBytes: 64 * 1024,
  maxCwdBytes: 4096,
  /** Largest uid or gid (2^32-2; 2^32-1 is "no id" to the kernel). */
  maxId: 4294967294,
} as const;

export const FRAME = {
  stdin: 0x01,
  stdinEof: 0x02,
  resize: 0x03,
  signal: 0x04,
  stdout: 0x11,
  stderr: 0x12,
  exit: 0x13,
  error: 0x14,
} as const;

export type ClientFrame =
  | { type: "stdin"; data: Buffer }
  | { type: "stdin_eof" }
  | { type: "resize"; rows: number; cols: number }
  | { type: "signal"; signal: number };

export type DaemonFrame =
  | { type: "stdout"; data: Buffer }
  | { type: "stderr"; data: Buffer }
  | { type: "exit"; status: ExitStatus }
  | { type: "error"; message: string };

export class FrameError extends Error {
  override name = "FrameError";
}

const ENV_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Pure: why `request` may not run, or undefined. Every message names the limit it broke. */
export function execRequestProblem(request: Omit<ExecRequest, "type" | "container">): string | undefined {
  const { command, environment, cwd, uid, gid } = request;
  if (command.length === 0) return "exec: the command is empty";
  if (command[0] === "") return "exec: the command name is empty";
  if (command.length > EXEC_LIMITS.maxArgs)
    return `exec: ${command.length} arguments exceed the limit of ${EXEC_LIMITS.maxArgs}`;
  const argBytes = command.reduce((n, a) => n + Buffer.byteLength(a) + 1, 0);
  if (argBytes > EXEC_LIMITS.maxArgBytes)
    return `exec: the arguments take ${argBytes} bytes, over the limit of ${EXEC_LIMITS.maxArgBytes}`;
  const env = Object.entries(environment);
  if (env.length > EXEC_LIMITS.maxEnv)
    return `exec: ${env.length} environment variables exceed the limit of ${EXEC_LIMITS.maxEnv}`;
  let envBytes = 0;
  for (const [key, value] of env) {
    if (!ENV_KEY.test(key)) return `exec: invalid environment variable name ${JSON.stringify(key)}`;
    envBytes += Buffer.byteLength(key) + Buffer.byteLength(value) + 2;
  }
  if (envBytes > EXEC_LIMITS.maxEnvBytes)
    return `exec: the environment takes ${envBytes} bytes, over the limit of ${EXEC_LIMITS.maxEnvBytes}`;
  if (cwd !== null) {
    if (!cwd.startsWith("/")) return `exec: the working directory ${JSON.stringify(cwd)} is not absolute`;
    if (Buffer.byteLength(cwd) > EXEC_LIMITS.maxCwdBytes)
      return `exec: the working directory is longer than ${EXEC_LIMITS.maxCwdBytes} bytes`;
  }
  for (const [name, id] of [
    ["uid", uid],
    ["gid", gid],
  ] as const) {
    if (id !== null && (!Number.isSafeInteger(id) || id < 0 || id > EXEC_LIMITS.maxId))
      return `exec: ${name} ${id} is out of range (0-${EXEC_LIMITS.maxId})`;
  }
  if (gid !== null && uid === null) return "exec: a gid needs a uid";
  return undefined;
}

function frame(type: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(FRAME_HEADER);
  header.writeUInt8(type, 0);
  header.writeUInt32BE(payload.length, 1);
  return Buffer.concat([header, payload]);
}

/** Data frames of `type`, split at MAX_FRAME_PAYLOAD. */
function dataFrames(type: number, data: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < data.length; at += MAX_FRAME_PAYLOAD) {
    out.push(frame(type, data.subarray(at, at + MAX_FRAME_PAYLOAD)));
  }
  return out;
}

/** The wire form of an exit status inside an `exit` frame (exit notifications' shape). */
function statusJson(status: ExitStatus): string {
  return JSON.stringify(
    status.type === "exit" ? { exit: { code: status.code } } : { signalled: { signal: status.signal } },
  );
}

function parseStatus(text: string): ExitStatus {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new FrameError("exec stream: malformed exit frame");
  }
  const v = value as { exit?: { code?: unknown }; signalled?: { signal?: unknown } };
  if (typeof v?.exit?.code === "number" && Number.isInteger(v.exit.code))
    return { type: "exit", code: v.exit.code };
  if (typeof v?.signalled?.signal === "number" && Number.isInteger(v.signalled.signal))
    return { type: "signalled", signal: v.signalled.signal };
  throw new FrameError("exec stream: malformed exit frame");
}

export function encodeClientFrame(f: ClientFrame): Buffer[] {
  switch (f.type) {
    case "stdin":
      return dataFrames(FRAME.stdin, f.data);
    case "stdin_eof":
      return [frame(FRAME.stdinEof, Buffer.alloc(0))];
    case "resize": {
      const b = Buffer.alloc(4);
      b.writeUInt16BE(f.rows, 0);
      b.writeUInt16BE(f.cols, 2);
      return [frame(FRAME.resize, b)];
    }
    case "signal":
      return [frame(FRAME.signal, Buffer.from([f.signal]))];
  }
}

export function encodeDaemonFrame(f: DaemonFrame): Buffer[] {
  switch (f.type) {
    case "stdout":
      return dataFrames(FRAME.stdout, f.data);
    case "stderr":
      return dataFrames(FRAME.stderr, f.data);
    case "exit":
      return [frame(FRAME.exit, Buffer.from(statusJson(f.status)))];
    case "error":
      return [frame(FRAME.error, Buffer.from(f.message.slice(0, 4096)))];
  }
}

function decodeClient(type: number, p: Buffer): ClientFrame {
  switch (type) {
    case FRAME.stdin:
      return { type: "stdin", data: p };
    case FRAME.stdinEof:
      if (p.length !== 0) throw new FrameError("exec stream: stdin_eof frame with a payload");
      return { type: "stdin_eof" };
    case FRAME.resize: {
      if (p.length !== 4) throw new FrameError("exec stream: resize frame is not 4 bytes");
      const rows = p.readUInt16BE(0);
      const cols = p.readUInt16BE(2);
      if (rows === 0 || cols === 0) throw new FrameError("exec stream: resize to zero rows or columns");
      return { type: "resize", rows, cols };
    }
    case FRAME.signal: {
      if (p.length !== 1 || p[0]! < 1 || p[0]! > 64)
        throw new FrameError("exec stream: signal frame is not one byte of 1-64");
      return { type: "signal", signal: p[0]! };
    }
    default:
      throw new FrameError(`exec stream: unknown client frame type ${type}`);
  }
}

function decodeDaemon(type: number, p: Buffer): DaemonFrame {
  switch (type) {
    case FRAME.stdout:
      return { type: "stdout", data: p };
    case FRAME.stderr:
      return { type: "stderr", data: p };
    case FRAME.exit:
      return { type: "exit", status: parseStatus(p.toString("utf8")) };
    case FRAME.error:
      return { type: "error", message: p.toString("utf8") };
    default:
      throw new FrameError(`exec stream: unknown daemon frame type ${type}`);
  }
}

/**
 * Incremental decoder: `push` bytes as they arrive, take whole frames with `next`. Holds at most
 * one frame's bytes beyond what the caller pushed last (the caller pushes only when `next`
 * returned undefined), and refuses a header announcing more than MAX_FRAME_PAYLOAD before
 * collecting its payload.
 */
export class FrameDecoder<F extends ClientFrame | DaemonFrame> {
  private chunks: Buffer[] = [];
  private size = 0;

  private constructor(private readonly decode: (type: number, payload: Buffer) => F) {}

  static client(): FrameDecoder<ClientFrame> {
    return new FrameDecoder(decodeClient);
  }

  static daemon(): FrameDecoder<DaemonFrame> {
    return new FrameDecoder(decodeDaemon);
  }

  /** Bytes held that do not make a whole frame yet. */
  get buffered(): number {
    return this.size;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.size += chunk.length;
  }

  /** The next whole frame, or undefined until more bytes are pushed. Throws FrameError. */
  next(): F | undefined {
    if (this.size < FRAME_HEADER) return undefined;
    // The header is read without joining the chunks; they are joined once the frame is whole.
    if (this.chunks[0]!.length < FRAME_HEADER) this.chunks = [Buffer.concat(this.chunks, this.size)];
    const type = this.chunks[0]!.readUInt8(0);
    const length = this.chunks[0]!.readUInt32BE(1);
    if (length > MAX_FRAME_PAYLOAD)
      throw new FrameError(`exec stream: frame of ${length} bytes exceeds ${MAX_FRAME_PAYLOAD}`);
    if (this.size < FRAME_HEADER + length) return undefined;
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.size);
    const payload = Buffer.from(all.subarray(FRAME_HEADER, FRAME_HEADER + length));
    const rest = all.subarray(FRAME_HEADER + length);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.size = rest.length;
    return this.decode(type, payload);
  }
}
