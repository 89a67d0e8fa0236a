/**
 * Kubernetes' remote command protocol over SPDY (client-go `tools/remotecommand`, the kubelet's
 * `cri/streaming/remotecommand`), the exec side of the streaming server.
 *
 * The client opens one stream per channel, named by its `streamtype` header: `error` always,
 * `stdin`/`stdout`/`stderr` as the CRI request asked, `resize` with a tty from v3 on. Once all
 * are there the process starts; stdin's FIN is the process's stdin EOF; stdout/stderr end with
 * FIN after the process's output; then the status goes on the error stream and the connection
 * closes. The status is, for `v4.channel.k8s.io`, a `metav1.Status` in JSON (`Success`; or
 * `Failure` with reason `NonZeroExitCode` and a cause `ExitCode` whose message is the code; or
 * `InternalError`); for v1-v3 only the failure's text (nothing on success). Resize messages are
 * JSON objects `{"Width":W,"Height":H}`, one after another.
 *
 * A process killed by a signal has no exit code; it is reported as code 128+N, as a shell (and
 * runc without -d) would.
 */
import type { Writable } from "node:stream";
import type { Logger } from "pino";
import type { ExitStatus } from "../../protocol/messages.js";
import { acceptStreams, type SpdySession, type SpdyStream } from "./session.js";
import { RstStatus } from "./spdy.js";
import { ExecRefusedError, type ExecStarter, type StartedExec } from "./backend.js";

export const REMOTECOMMAND_PROTOCOLS = [
  "v4.channel.k8s.io",
  "v3.channel.k8s.io",
  "v2.channel.k8s.io",
  "channel.k8s.io",
] as const;
export type RemoteCommandProtocol = (typeof REMOTECOMMAND_PROTOCOLS)[number];

export interface RemoteCommandTarget {
  skiffId: string;
  command: string[];
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  tty: boolean;
}

/** The streams a session must open before the process starts. */
type StreamType = "error" | "stdin" | "stdout" | "stderr" | "resize";

const MAX_RESIZE_BUFFER = 4096;

/** The exit code of `status`: signals as 128+N. */
export function exitCodeOf(status: ExitStatus): number {
  return status.type === "exit" ? status.code : 128 + status.signal;
}

/** The v4 status document (metav1.Status) for a finished process or a failure to run it. */
export function statusDocument(outcome: { code: number } | { error: string }): Record<string, unknown> {
  if ("error" in outcome) {
    const message = `error executing command in container: ${outcome.error}`;
    return {
      metadata: {},
      status: "Failure",
      message: `Internal error occurred: ${message}`,
      reason: "InternalError",
      details: { causes: [{ message }] },
      code: 500,
    };
  }
  if (outcome.code === 0) return { metadata: {}, status: "Success" };
  return {
    metadata: {},
    status: "Failure",
    message: `command terminated with non-zero exit code: exit status ${outcome.code}`,
    reason: "NonZeroExitCode",
    details: { causes: [{ reason: "ExitCode", message: String(outcome.code) }] },
  };
}

/** Serves one exec session; resolves when it is over (the connection is closed by then). */
export async function serveExec(o: {
  session: SpdySession;
  protocol: RemoteCommandProtocol;
  target: RemoteCommandTarget;
  start: ExecStarter;
  streamTimeoutMs: number;
  log: Logger;
}): Promise<void> {
  const { session, protocol, target, log } = o;
  const resizing = target.tty && (protocol === "v4.channel.k8s.io" || protocol === "v3.channel.k8s.io");
  const expected = new Set<StreamType>(["error"]);
  if (target.stdin) expected.add("stdin");
  if (target.stdout) expected.add("stdout");
  // A tty has one output (kubelet drops stderr with a tty too).
  if (target.stderr && !target.tty) expected.add("stderr");
  if (resizing) expected.add("resize");

  const streams = await acceptStreams(session, expected, o.streamTimeoutMs, (type) =>
    log.debug({ type }, "exec: unexpected stream refused"),
  );
  if (streams === undefined) {
    log.info("exec: the client did not open its streams in time");
    session.close();
    return;
  }

  const errorStream = streams.get("error")!;
  const writeStatus = async (outcome: { code: number } | { error: string }): Promise<void> => {
    let text: string | undefined;
    if (protocol === "v4.channel.k8s.io") text = JSON.stringify(statusDocument(outcome));
    else if ("error" in outcome) text = `error executing command in container: ${outcome.error}`;
    else if (outcome.code !== 0)
      text = `command terminated with non-zero exit code: exit status ${outcome.code}`;
    await new Promise<void>((resolve) => {
      if (text === undefined) errorStream.writable.end(resolve);
      else errorStream.writable.end(Buffer.from(text), resolve);
    });
  };

  let exec: StartedExec;
  try {
    exec = await o.start({
      type: "exec",
      container: target.skiffId,
      command: target.command,
      environment: {},
      cwd: null,
      uid: null,
      gid: null,
      tty: target.tty,
      stdin: target.stdin,
    });
  } catch (e) {
    const error = e instanceof ExecRefusedError || e instanceof Error ? e.message : String(e);
    log.info({ err: error }, "exec: not started");
    await writeStatus({ error });
    endAll(streams);
    session.close();
    return;
  }
  log.info({ pid: exec.pid, container: target.skiffId }, "exec started (CRI)");
  const gone = (): void => exec.close(); // the client left: the process is killed
  // The client may have left while the runtime was starting the process.
  if (session.isEnded) gone();
  else session.once("end", gone);
  try {
    const stdin = streams.get("stdin");
    if (stdin !== undefined) {
      stdin.readable.pipe(exec.stdin);
      stdin.readable.on("error", () => exec.stdin.end());
    }
    const outputs = [
      relay(exec.stdout, streams.get("stdout")?.writable),
      relay(exec.stderr, streams.get("stderr")?.writable),
    ];
    const resize = streams.get("resize");
    if (resize !== undefined) readResizes(resize, exec, log);
    const status = await exec.ended;
    await Promise.all(outputs);
    await writeStatus({ code: exitCodeOf(status) });
  } catch (e) {
    await writeStatus({ error: e instanceof Error ? e.message : String(e) }).catch(() => undefined);
  } finally {
    session.off("end", gone);
    exec.close();
    endAll(streams);
    session.close();
  }
}

/**
 * Copies `from` to `to` and ends it (FIN) after the last byte, or discards `from` without a
 * stream; resolves when `from` ended.
 */
function relay(from: NodeJS.ReadableStream, to: Writable | undefined): Promise<void> {
  return new Promise((resolve) => {
    from.on("end", resolve);
    from.on("close", resolve);
    from.on("error", resolve);
    if (to === undefined) from.resume();
    else {
      from.pipe(to);
      // A stream the client reset takes nothing more: the output is dropped, never left to
      // block the process on a full pipe.
      to.on("close", () => {
        from.unpipe(to);
        from.resume();
      });
    }
  });
}

function endAll(streams: Map<StreamType, SpdyStream>): void {
  for (const stream of streams.values()) if (!stream.writable.writableEnded) stream.writable.end();
}

/** Applies `{"Width":W,"Height":H}` messages from the resize stream. */
function readResizes(stream: SpdyStream, exec: StartedExec, log: Logger): void {
  let pending = "";
  stream.readable.setEncoding("utf8");
  stream.readable.on("data", (chunk: string) => {
    pending += chunk;
    if (pending.length > MAX_RESIZE_BUFFER) {
      log.warn("exec: resize stream over its limit; reset");
      stream.reset(RstStatus.PROTOCOL_ERROR);
      return;
    }
    // json.Encoder writes one object per line; a decoder also takes them back to back.
    for (let end = objectEnd(pending); end > 0; end = objectEnd(pending)) {
      const text = pending.slice(0, end);
      pending = pending.slice(end).replace(/^\s+/, "");
      try {
        const size = JSON.parse(text) as { Width?: unknown; Height?: unknown };
        const { Width: cols, Height: rows } = size;
        if (typeof cols === "number" && typeof rows === "number" && valid(cols) && valid(rows))
          exec.resize(rows, cols);
      } catch {
        log.debug("exec: unreadable resize message ignored");
      }
    }
  });
}

function valid(n: number): boolean {
  return Number.isInteger(n) && n >= 0 && n <= 65535;
}

/** The end index of the first complete `{...}` (no nesting in a TerminalSize), or 0. */
function objectEnd(text: string): number {
  const close = text.indexOf("}");
  return close < 0 ? 0 : close + 1;
}
