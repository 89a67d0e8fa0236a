/**
 * `exec` (Skiff): runs a process in a running container through `<runtime> exec`, supervised by
 * a `skiff-exec` child (helper.ts), and turns the request's connection into an exec stream
 * (protocol/exec.ts; docs/console.md, "exec").
 *
 * Request path: the session hands the request here (runtime.ts dispatch, beside `install`); the
 * state is only read (execRefusal), never changed: an exec process belongs to its container's
 * instance (pid namespace and cgroup), so it ends with it, and the state owner needs no record
 * of it. The answer is `ok` with the host pid once the runtime started the process, then the
 * connection carries frames until the `exit` frame.
 *
 * Limits: at most MAX_EXEC_SESSIONS at once; request sizes as in EXEC_LIMITS; per stream at
 * most MAX_UNREAD_BYTES of output waiting for the client (then the helper's pipes are no longer
 * read, so the process blocks on write), and one stdin frame waiting for the process (the
 * client's socket is not read until the process took it).
 *
 * INVARIANTS: every path out of a started stream ends the process or sees it end: the client
 * leaving (EOF or a broken frame) sends SIGHUP and SIGKILL after HANGUP_GRACE_MS; daemon
 * shutdown (the session's signal) sends SIGKILL; a daemon crash closes the helper's control
 * channel, on which the helper SIGKILLs it. The container's end kills it (its pid namespace).
 */
import { randomBytes } from "node:crypto";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import type { Socket } from "node:net";
import type { Logger } from "pino";
import { MAX_UNIX_SOCKET_PATH } from "../../common/unix-socket.js";
import { resolveWithin } from "../../common/paths.js";
import type { ContainerId } from "../../protocol/container.js";
import {
  FrameDecoder,
  FrameError,
  MAX_FRAME_PAYLOAD,
  encodeDaemonFrame,
  execRequestProblem,
  type DaemonFrame,
} from "../../protocol/exec.js";
import type { ExecRequest, ExitStatus, Response, WireError } from "../../protocol/messages.js";
import type { LineReader } from "../../protocol/framing.js";
import type { RequestIo } from "../console/session.js";
import { bundleDirOf } from "../oci/bundle.js";
import { ExecHelper, ExecStartError } from "./helper.js";
import {
  execProcess,
  execRefusal,
  parseJsonExact,
  runtimeErrorText,
  stringifyJsonExact,
  type ExecTarget,
  type SpecProcess,
} from "./process.js";
import { messageOf } from "../../common/errors.js";

export const MAX_EXEC_SESSIONS = 64;
/** Output waiting for a slow client before the process's output is no longer read. */
export const MAX_UNREAD_BYTES = 256 * 1024;
/** The runtime must have started the process within this. */
export const EXEC_START_TIMEOUT_MS = 10_000;
/** After a client left: SIGHUP, then SIGKILL this much later. */
export const HANGUP_GRACE_MS = 1000;

const SIGHUP = 1;
const SIGKILL = 9;

export interface ExecExecutorOptions {
  runDir: string;
  runtime: { path: string; root: string };
  /** skiff-exec's path. */
  helper: string;
  /** What the state says about `container` now (read only). */
  target: (container: ContainerId) => (ExecTarget & { capabilities: readonly string[] }) | undefined;
  log: Logger;
}

type ExecResponse = Extract<Response, { type: "exec" }>;

/**
 * `open` refused the exec; `error` is the console's answer for it. `exhausted`: refused because
 * MAX_EXEC_SESSIONS run already (the CRI answers RESOURCE_EXHAUSTED for it).
 */
export class ExecOpenError extends Error {
  override name = "ExecOpenError";
  constructor(
    readonly error: WireError,
    readonly exhausted = false,
  ) {
    super("cause" in error ? String(error.cause) : "error" in error ? String(error.error) : error.type);
  }
}

export class ExecExecutor {
  private sessions = 0;
  private readonly dir: string;

  constructor(private readonly o: ExecExecutorOptions) {
    this.dir = resolveWithin(o.runDir, "exec");
  }

  /** Serves one `exec` request: answers it, and on `ok` has the session upgrade to the stream. */
  async serve(request: ExecRequest, io: RequestIo): Promise<Response> {
    const container = request.container;
    const fail = (error: WireError): ExecResponse => ({
      type: "exec",
      result: { type: "error", container, error },
    });
    const problem = execRequestProblem(request);
    if (problem !== undefined) return fail({ type: "invalid_arguments", cause: problem });
    if (!io.upgradable)
      return fail({
        type: "invalid_arguments",
        cause: "exec: the connection is subscribed to notifications; exec needs a connection of its own",
      });
    let opened: Awaited<ReturnType<ExecExecutor["open"]>>;
    try {
      opened = await this.open(request);
    } catch (e) {
      if (e instanceof ExecOpenError) return fail(e.error);
      throw e;
    }
    const { helper, pid, release } = opened;
    io.upgrade((socket, reader, signal) =>
      this.stream(request, helper, socket, reader, signal).finally(release),
    );
    return { type: "exec", result: { type: "ok", container, pid } };
  }

  /**
   * Starts an exec: the checks, the limit and the process, handed over as the running helper
   * (`serve` for the console; the CRI streaming server directly). The caller owns it:
   * `release()` (once the helper ended or was abandoned) frees its slot among MAX_EXEC_SESSIONS.
   * Rejects with ExecOpenError, whose `error` is the console's answer.
   */
  async open(request: ExecRequest): Promise<{ helper: ExecHelper; pid: number; release: () => void }> {
    const { container } = request;
    const problem = execRequestProblem(request);
    if (problem !== undefined) throw new ExecOpenError({ type: "invalid_arguments", cause: problem });
    const target = this.o.target(container);
    const refusal = execRefusal(container, target);
    if (refusal !== undefined) throw new ExecOpenError(refusal);
    if (this.sessions >= MAX_EXEC_SESSIONS)
      throw new ExecOpenError(
        {
          type: "exec_failed",
          container,
          error: `${MAX_EXEC_SESSIONS} exec sessions run already`,
        },
        true,
      );
    this.sessions++;
    let released = false;
    const release = (): void => {
      if (!released) this.sessions--;
      released = true;
    };
    try {
      const { helper, pid } = await this.start(request, target!.capabilities);
      this.o.log.info({ container, pid, command: request.command[0] }, "exec started");
      return { helper, pid, release };
    } catch (e) {
      release();
      const error = e instanceof ExecStartError ? runtimeErrorText(e.message) : messageOf(e);
      this.o.log.info({ container, err: error }, "exec refused by the runtime");
      throw new ExecOpenError({ type: "exec_failed", container, error });
    }
  }

  /** Writes the process file and runs the helper; resolves once the runtime started the process. */
  private async start(
    request: ExecRequest,
    capabilities: readonly string[],
  ): Promise<{ helper: ExecHelper; pid: number }> {
    const { container } = request;
    const name = container.slice(0, container.lastIndexOf(":"));
    const config = resolveWithin(bundleDirOf({ runDir: this.o.runDir }, container), "config.json");
    let spec: { process?: SpecProcess };
    try {
      spec = parseJsonExact(await readFile(config, "utf8")) as { process?: SpecProcess };
    } catch (e) {
      throw new Error(`cannot read the container's OCI config: ${messageOf(e)}`);
    }
    if (spec.process === undefined) throw new Error(`${config} has no process`);
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const base = resolveWithin(this.dir, randomBytes(8).toString("hex"));
    const files = { pid: `${base}.pid`, process: `${base}.json`, console: `${base}.sock` };
    if (request.tty && Buffer.byteLength(files.console) > MAX_UNIX_SOCKET_PATH)
      throw new Error(`the console socket path ${files.console} is too long for a Unix socket`);
    const cleanup = (): Promise<unknown> =>
      Promise.all(Object.values(files).map((f) => rm(f, { force: true })));
    await writeFile(files.process, stringifyJsonExact(execProcess(spec.process, capabilities, request)), {
      mode: 0o600,
    });
    const helper = new ExecHelper({
      helper: this.o.helper,
      pidFile: files.pid,
      consoleSocket: request.tty ? files.console : undefined,
      runtime: [
        this.o.runtime.path,
        "--root",
        this.o.runtime.root,
        "exec",
        "--detach",
        "--pid-file",
        files.pid,
        ...(request.tty ? ["--tty", "--console-socket", files.console] : []),
        "--process",
        files.process,
        name,
      ],
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      helper.abandon(); // the helper kills the runtime and exits
    }, EXEC_START_TIMEOUT_MS);
    try {
      const pid = await helper.started;
      if (!request.stdin) helper.stdin.end();
      return { helper, pid };
    } catch (e) {
      if (timedOut)
        throw new Error(`the runtime did not start the process within ${EXEC_START_TIMEOUT_MS} ms`);
      throw e;
    } finally {
      clearTimeout(timer);
      void cleanup();
    }
  }

  /** Relays frames until the process's status is known; then writes `exit` and returns. */
  private async stream(
    request: ExecRequest,
    helper: ExecHelper,
    socket: Socket,
    reader: LineReader,
    signal: AbortSignal,
  ): Promise<void> {
    const { container } = request;
    const log = this.o.log.child({ container });
    let finished = false;
    let hangupTimer: NodeJS.Timeout | undefined;
    const send = (frame: DaemonFrame): boolean => {
      if (socket.destroyed || !socket.writable) return true;
      let ok = true;
      for (const b of encodeDaemonFrame(frame)) ok = socket.write(b);
      return ok;
    };
    const hangup = (why: string): void => {
      if (finished || hangupTimer !== undefined) return;
      log.info(`exec client gone (${why}): SIGHUP, SIGKILL after ${HANGUP_GRACE_MS} ms`);
      helper.signal(SIGHUP);
      hangupTimer = setTimeout(() => helper.signal(SIGKILL), HANGUP_GRACE_MS);
    };
    const onAbort = (): void => helper.signal(SIGKILL);
    signal.addEventListener("abort", onAbort, { once: true });
    if (signal.aborted) onAbort();

    // Output: frames as it comes; the helper's pipes pause while the client is behind, and flow
    // again (into nothing) once it is gone, so the helper can always finish.
    let paused = false;
    const resume = (): void => {
      paused = false;
      helper.stdout.resume();
      helper.stderr.resume();
    };
    const output = (type: "stdout" | "stderr") => (data: Buffer) => {
      // A chunk already on its way when the pipes paused is still sent (never dropped).
      const taken = send({ type, data });
      if (paused || (taken && socket.writableLength <= MAX_UNREAD_BYTES)) return;
      paused = true;
      helper.stdout.pause();
      helper.stderr.pause();
      socket.once("drain", resume);
    };
    helper.stdout.on("data", output("stdout"));
    helper.stderr.on("data", output("stderr"));
    // Client gone: the socket closes (an unread reader would not see EOF while paused).
    socket.once("close", () => {
      socket.off("drain", resume);
      resume();
      hangup("connection closed");
    });

    void this.input(request, helper, reader, signal).then(
      () => hangup("end of stream"),
      (e: unknown) => {
        if (e instanceof FrameError) {
          log.warn(`closing exec stream: ${e.message}`);
          send({ type: "error", message: e.message });
          helper.signal(SIGKILL);
          socket.end();
        } else hangup(messageOf(e));
      },
    );

    let status: ExitStatus | undefined;
    try {
      status = await helper.ended;
      log.info({ status }, "exec ended");
      send({ type: "exit", status });
    } catch (e) {
      log.error({ err: e }, "exec supervision failed");
      send({ type: "error", message: `exec supervision failed: ${messageOf(e)}` });
    } finally {
      finished = true;
      clearTimeout(hangupTimer);
      signal.removeEventListener("abort", onAbort);
      helper.abandon();
    }
  }

  /** Client frames until EOF; resolves at EOF, rejects with FrameError on a broken frame. */
  private async input(
    request: ExecRequest,
    helper: ExecHelper,
    reader: LineReader,
    signal: AbortSignal,
  ): Promise<void> {
    const decoder = FrameDecoder.client();
    let stdinOpen = request.stdin;
    for (;;) {
      const chunk = await reader.readChunk(MAX_FRAME_PAYLOAD);
      if (chunk === null || signal.aborted) return;
      decoder.push(chunk);
      for (let frame = decoder.next(); frame !== undefined; frame = decoder.next()) {
        switch (frame.type) {
          case "stdin":
            // Stdin frames after stdin_eof, or without `stdin` asked for, are dropped.
            if (stdinOpen && !helper.stdin.write(frame.data)) await drained(helper.stdin);
            break;
          case "stdin_eof":
            if (stdinOpen) helper.stdin.end();
            stdinOpen = false;
            break;
          case "resize":
            if (request.tty) helper.resize(frame.rows, frame.cols);
            break;
          case "signal":
            helper.signal(frame.signal);
            break;
        }
      }
    }
  }
}

/** Waits until `stream` takes more, or can take nothing more (closed, failed). */
function drained(stream: NodeJS.WritableStream & { destroyed?: boolean }): Promise<void> {
  if (stream.destroyed === true) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      stream.off("drain", done);
      stream.off("close", done);
      stream.off("error", done);
      resolve();
    };
    stream.on("drain", done);
    stream.on("close", done);
    stream.on("error", done);
  });
}
