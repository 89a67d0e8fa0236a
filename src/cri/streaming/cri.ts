/**
 * The CRI methods of streaming: `ExecSync` (runs to the end and answers the output), `Exec`,
 * `Attach` and `PortForward` (answer a one-time URL of the streaming server). Requests are checked as the
 * kubelet's streaming server checks them; containers and pods are found through the
 * StreamingLookup the daemon provides.
 */
import { status as GrpcStatus } from "@grpc/grpc-js";
import type { ExecRequest } from "../../protocol/messages.js";
import { ExecRefusedError, type ExecStarter, type StreamingLookup } from "./backend.js";
import { exitCodeOf } from "./remotecommand.js";
import type { StreamingServer } from "./server.js";

/** Output ExecSync keeps per stream; the rest is read and dropped (as containerd caps it). */
export const EXEC_SYNC_MAX_OUTPUT = 1024 * 1024;
const SIGKILL = 9;

/** A refusal with its gRPC status (server.ts answers it as it is). */
export class StreamingError extends Error {
  override name = "StreamingError";
  constructor(
    readonly code: GrpcStatus,
    message: string,
  ) {
    super(message);
  }
}

export interface StreamingBackend {
  lookup: StreamingLookup;
  exec: ExecStarter;
  server: StreamingServer;
}

type Message = Record<string, unknown>;
type Handler = (call: { request: Message }) => Promise<unknown>;

function text(message: Message, field: string): string {
  const value = message[field];
  return typeof value === "string" ? value : "";
}

function flag(message: Message, field: string): boolean {
  return message[field] === true;
}

function command(message: Message): string[] {
  const cmd = message.cmd;
  if (!Array.isArray(cmd) || cmd.length === 0 || cmd.some((a) => typeof a !== "string"))
    throw new StreamingError(GrpcStatus.INVALID_ARGUMENT, "cmd must name a command");
  return cmd as string[];
}

/** The running Skiff container behind a CRI container id. */
function runningContainer(lookup: StreamingLookup, message: Message): string {
  const id = text(message, "container_id");
  if (id === "") throw new StreamingError(GrpcStatus.INVALID_ARGUMENT, "missing required container_id");
  const found = lookup.container(id);
  if (found === undefined) throw new StreamingError(GrpcStatus.NOT_FOUND, `container ${id} not found`);
  if (!found.running)
    throw new StreamingError(GrpcStatus.FAILED_PRECONDITION, `container ${id} is not running`);
  return found.skiffId;
}

function execRefusal(e: unknown): StreamingError {
  if (!(e instanceof ExecRefusedError)) return e as StreamingError;
  const code = {
    not_found: GrpcStatus.NOT_FOUND,
    not_running: GrpcStatus.FAILED_PRECONDITION,
    exhausted: GrpcStatus.RESOURCE_EXHAUSTED,
    invalid: GrpcStatus.INVALID_ARGUMENT,
    failed: GrpcStatus.UNKNOWN,
  }[e.reason];
  return new StreamingError(code, e.message);
}

/** Collects up to `max` bytes of `stream`, reading (and dropping) the rest. */
function collect(stream: NodeJS.ReadableStream, max: number): Promise<Buffer> {
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    let size = 0;
    stream.on("data", (chunk: Buffer) => {
      if (size >= max) return;
      const piece = chunk.subarray(0, max - size);
      parts.push(piece);
      size += piece.length;
    });
    const done = (): void => resolve(Buffer.concat(parts));
    stream.on("end", done);
    stream.on("close", done);
    stream.on("error", done);
  });
}

export function streamingHandlers(backend: StreamingBackend | undefined): Record<string, Handler> {
  const need = (): StreamingBackend => {
    if (backend === undefined)
      throw new StreamingError(
        GrpcStatus.UNIMPLEMENTED,
        "the streaming server is not wired to CRI containers and pods in this daemon yet",
      );
    return backend;
  };
  return {
    "RuntimeService/ExecSync": async ({ request }) => {
      const { lookup, exec } = need();
      const skiffId = runningContainer(lookup, request);
      const cmd = command(request);
      const timeout = Number(request.timeout ?? 0);
      if (!Number.isSafeInteger(timeout) || timeout < 0)
        throw new StreamingError(GrpcStatus.INVALID_ARGUMENT, "timeout must be a whole number of seconds");
      const execRequest: ExecRequest = {
        type: "exec",
        container: skiffId,
        command: cmd,
        environment: {},
        cwd: null,
        uid: null,
        gid: null,
        tty: false,
        stdin: false,
      };
      const started = await exec(execRequest).catch((e: unknown) => {
        throw execRefusal(e);
      });
      let timedOut = false;
      const timer =
        timeout > 0
          ? setTimeout(() => {
              timedOut = true;
              started.signal(SIGKILL);
            }, timeout * 1000)
          : undefined;
      try {
        const [stdout, stderr, status] = await Promise.all([
          collect(started.stdout, EXEC_SYNC_MAX_OUTPUT),
          collect(started.stderr, EXEC_SYNC_MAX_OUTPUT),
          started.ended,
        ]);
        // The kubelet reads DEADLINE_EXCEEDED as a timed-out probe.
        if (timedOut)
          throw new StreamingError(
            GrpcStatus.DEADLINE_EXCEEDED,
            `command timed out after ${timeout} s (killed)`,
          );
        return { stdout, stderr, exit_code: exitCodeOf(status) };
      } finally {
        clearTimeout(timer);
        started.close();
      }
    },
    "RuntimeService/Exec": ({ request }) => {
      const { lookup, server } = need();
      const skiffId = runningContainer(lookup, request);
      const cmd = command(request);
      const [stdin, stdout, stderr, tty] = ["stdin", "stdout", "stderr", "tty"].map((f) => flag(request, f));
      if (tty && stderr)
        throw new StreamingError(GrpcStatus.INVALID_ARGUMENT, "tty and stderr cannot both be true");
      if (!stdin && !stdout && !stderr)
        throw new StreamingError(GrpcStatus.INVALID_ARGUMENT, "one of stdin, stdout, or stderr must be set");
      const url = server.execUrl({
        skiffId,
        command: cmd,
        stdin: stdin!,
        stdout: stdout!,
        stderr: stderr!,
        tty: tty!,
      });
      if (url === undefined)
        throw new StreamingError(GrpcStatus.RESOURCE_EXHAUSTED, "too many streaming URLs are outstanding");
      return Promise.resolve({ url });
    },
    "RuntimeService/Attach": ({ request }) => {
      const { lookup, server } = need();
      const criId = text(request, "container_id");
      const skiffId = runningContainer(lookup, request);
      const log = lookup.container(criId)?.log;
      const [stdin, stdout, stderr, tty] = ["stdin", "stdout", "stderr", "tty"].map((f) => flag(request, f));
      // A Skiff container's stdin is /dev/null and it has no terminal (docs/cri.md, Streaming).
      if (stdin)
        throw new StreamingError(
          GrpcStatus.INVALID_ARGUMENT,
          "attach with stdin: Skiff containers have no open stdin",
        );
      if (tty)
        throw new StreamingError(
          GrpcStatus.INVALID_ARGUMENT,
          "attach with a tty: Skiff containers have none",
        );
      if (!stdout && !stderr)
        throw new StreamingError(GrpcStatus.INVALID_ARGUMENT, "one of stdout or stderr must be set");
      if (log === undefined)
        throw new StreamingError(
          GrpcStatus.FAILED_PRECONDITION,
          `container ${criId} has no output log to attach to`,
        );
      const url = server.attachUrl({
        skiffId,
        log,
        stdout: stdout!,
        stderr: stderr!,
        running: () => lookup.container(criId)?.running === true,
      });
      if (url === undefined)
        throw new StreamingError(GrpcStatus.RESOURCE_EXHAUSTED, "too many streaming URLs are outstanding");
      return Promise.resolve({ url });
    },
    "RuntimeService/PortForward": ({ request }) => {
      const { lookup, server } = need();
      const podSandboxId = text(request, "pod_sandbox_id");
      if (podSandboxId === "")
        throw new StreamingError(GrpcStatus.INVALID_ARGUMENT, "missing required pod_sandbox_id");
      const netns = lookup.podNetns(podSandboxId);
      if (netns === undefined)
        throw new StreamingError(
          GrpcStatus.NOT_FOUND,
          `pod sandbox ${podSandboxId} not found (or has no network namespace)`,
        );
      const ports = Array.isArray(request.port) ? (request.port as unknown[]).map(Number) : [];
      if (ports.some((p) => !Number.isInteger(p) || p < 1 || p > 65535))
        throw new StreamingError(GrpcStatus.INVALID_ARGUMENT, "ports must be between 1 and 65535");
      const url = server.portForwardUrl({ podSandboxId, netns, ports });
      if (url === undefined)
        throw new StreamingError(GrpcStatus.RESOURCE_EXHAUSTED, "too many streaming URLs are outstanding");
      return Promise.resolve({ url });
    },
  };
}
