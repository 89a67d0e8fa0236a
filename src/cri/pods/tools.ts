/**
 * The host tools pods are made with (util-linux unshare/nsenter/mount/umount, iproute2 ip,
 * hostname), run asynchronously so no request holds the event loop. A tool that fails rejects
 * with a PodError (INTERNAL) carrying its own message; one that hangs is killed at the timeout.
 */
import { spawn } from "node:child_process";
import { status as GrpcStatus } from "@grpc/grpc-js";
import { PodError } from "./errors.js";

const MAX_CAPTURE = 64 * 1024;
const TOOL_TIMEOUT_MS = 10_000;

export interface ToolFailure {
  code: number | null;
  stderr: string;
}

/** Runs `command args`, resolving with stdout; rejects with PodError carrying `failure`. */
export function runTool(command: string, args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      stdio: ["pipe", "pipe", "pipe"],
      timeout: TOOL_TIMEOUT_MS,
      killSignal: "SIGKILL",
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      if (stdout.length < MAX_CAPTURE) stdout += d;
    });
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      if (stderr.length < MAX_CAPTURE) stderr += d;
    });
    child.stdin.on("error", () => {
      // The tool may exit before reading its input; its exit status tells what happened.
    });
    child.stdin.end(input ?? "");
    child.on("error", (e) =>
      reject(new PodError(GrpcStatus.INTERNAL, `cannot run ${command}: ${e.message}`)),
    );
    child.on("close", (code, signal) => {
      if (code === 0) {
        resolve(stdout);
        return;
      }
      const status = code === null ? `signal ${signal}` : `exit code ${code}`;
      const detail = stderr.trim().split("\n").slice(-3).join(" | ");
      const error = new PodError(
        GrpcStatus.INTERNAL,
        `${command} ${args.join(" ")} failed (${status}): ${detail}`,
      );
      (error as PodError & { failure: ToolFailure }).failure = { code, stderr };
      reject(error);
    });
  });
}

/** The stderr of a failed tool, or "" for any other error. */
export function toolStderr(e: unknown): string {
  return (e as { failure?: ToolFailure }).failure?.stderr ?? "";
}
