// Runs the external tools NPK handling needs (mksquashfs, mkfs.erofs, unsquashfs, losetup,
// mount, ...) with an AbortSignal, capturing output so failures carry the tool's own message.
import { spawn } from "node:child_process";
import { NpkError } from "./errors.js";

export interface ToolResult {
  stdout: string;
  stderr: string;
}

const MAX_CAPTURE = 1024 * 1024;

export function runTool(
  command: string,
  args: string[],
  opts: { signal?: AbortSignal; input?: string } = {},
): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      stdio: ["pipe", "pipe", "pipe"],
      signal: opts.signal,
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
      // The tool may exit before reading its input; its exit status reports the real problem.
    });
    child.stdin.end(opts.input ?? "");
    child.on("error", (e: NodeJS.ErrnoException) => {
      if (e.name === "AbortError") reject(e);
      else reject(new NpkError("tool", `cannot run ${command}: ${e.message}`, { cause: e }));
    });
    child.on("close", (code, signal) => {
      if (code === 0) {
        resolve({ stdout, stderr });
        return;
      }
      const detail = (stderr.trim() || stdout.trim()).split("\n").slice(-5).join(" | ");
      const status = code === null ? `signal ${signal}` : `exit code ${code}`;
      reject(new NpkError("tool", `${command} ${args.join(" ")} failed (${status}): ${detail}`));
    });
  });
}
