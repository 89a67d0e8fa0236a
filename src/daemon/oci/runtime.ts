/**
 * The OCI runtime binary (runc, or crun where it works) for the operations the daemon runs
 * itself: kill, state and delete. Creating and starting belong to skiff-monitor, which runs
 * `<runtime> create` with the same --root.
 *
 * Every call has a timeout and takes an AbortSignal; the child is killed with SIGKILL on either.
 */
import { execFile } from "node:child_process";
import { access, constants, readFile } from "node:fs/promises";
import { delimiter, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import type { CgroupLayout } from "../cgroups/layout.js";

export type RuntimeKind = "runc" | "crun";

export interface RuntimeConfig {
  kind: RuntimeKind;
  /** Binary path; default: `kind` looked up in PATH. */
  path?: string;
}

export interface RuntimeInfo {
  kind: RuntimeKind;
  path: string;
  /** e.g. "1.1.5+ds1". */
  version: string;
}

/** Container states the runtime reports (`<runtime> state`). */
export type RuntimeStatus = "creating" | "created" | "running" | "paused" | "stopped";

export interface RuntimeState {
  id: string;
  /** The container's init on the host; 0 once stopped. */
  pid: number;
  status: RuntimeStatus;
  bundle: string;
}

/** Why a runtime command failed: the caller decides which of these are fine (e.g. killing a stopped container). */
export type RuntimeErrorReason = "not-found" | "not-running" | "timeout" | "failed";

export class RuntimeError extends Error {
  constructor(
    message: string,
    readonly reason: RuntimeErrorReason,
    readonly stderr = "",
  ) {
    super(message);
    this.name = "RuntimeError";
  }
}

const DEFAULT_TIMEOUT_MS = 10_000;
const execFileAsync = promisify(execFile);

/**
 * Checks that the configured runtime exists, runs and can work on this host. crun (1.8.1 tested)
 * refuses hybrid cgroup hosts ("cgroups in hybrid mode not supported, drop all controllers from
 * cgroupv2"), so it is refused here at daemon start rather than at every container start.
 */
/** The absolute path of `name` on PATH, or `name` itself when it is not there (the caller reports it). */
async function findOnPath(name: string): Promise<string> {
  const dirs = (process.env.PATH ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin").split(
    delimiter,
  );
  for (const dir of dirs) {
    const candidate = join(dir, name);
    if (
      await access(candidate, constants.X_OK).then(
        () => true,
        () => false,
      )
    )
      return candidate;
  }
  return name;
}

export async function detectRuntime(
  config: RuntimeConfig,
  layout: CgroupLayout,
  signal?: AbortSignal,
): Promise<RuntimeInfo> {
  // The monitor execs the runtime without a PATH search: always hand it an absolute path.
  const path = config.path ?? (await findOnPath(config.kind));
  let stdout: string;
  try {
    stdout = (await run(path, ["--version"], DEFAULT_TIMEOUT_MS, signal)).stdout;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new Error(`OCI runtime ${config.kind}: ${path} not found`);
    throw new Error(`OCI runtime ${config.kind}: "${path} --version" failed: ${(error as Error).message}`);
  }
  const version = new RegExp(`^${config.kind} version (\\S+)`, "m").exec(stdout)?.[1];
  if (version === undefined) {
    throw new Error(
      `OCI runtime ${config.kind}: ${path} is not ${config.kind} (--version printed "${firstLine(stdout)}")`,
    );
  }
  if (config.kind === "crun" && layout.kind === "hybrid") {
    throw new Error(
      `OCI runtime crun ${version} refuses hybrid cgroup hosts (v1 controllers plus cgroup2 at ${layout.unified ?? "?"}): ` +
        `"cgroups in hybrid mode not supported"; use runc on this host`,
    );
  }
  return { kind: config.kind, path, version };
}

/**
 * Runtime commands for containers under one state root (Skiff uses `<run_dir>/runc`, never the
 * runtime's default root, so its containers are its own).
 */
export class OciRuntime {
  constructor(
    readonly info: RuntimeInfo,
    /** The runtime's --root. */
    readonly root: string,
    private readonly timeoutMs = DEFAULT_TIMEOUT_MS,
  ) {}

  /** Sends `signal` to the container's init, or with `all` to every process in it. */
  async kill(
    id: string,
    signal: NodeJS.Signals | number,
    options: { all?: boolean; signal?: AbortSignal } = {},
  ): Promise<void> {
    const name = typeof signal === "number" ? String(signal) : signal.replace(/^SIG/, "");
    await this.exec(["kill", ...(options.all === true ? ["--all"] : []), id, name], options.signal);
  }

  /** The container's state, or undefined when the runtime does not know it. */
  async state(id: string, options: { signal?: AbortSignal } = {}): Promise<RuntimeState | undefined> {
    let stdout: string;
    try {
      stdout = await this.exec(["state", id], options.signal);
    } catch (error) {
      if (error instanceof RuntimeError && error.reason === "not-found") return undefined;
      throw error;
    }
    const raw = JSON.parse(stdout) as { id?: unknown; pid?: unknown; status?: unknown; bundle?: unknown };
    if (typeof raw.id !== "string" || typeof raw.pid !== "number" || typeof raw.status !== "string") {
      throw new RuntimeError(
        `${this.info.kind} state ${id}: unexpected output ${firstLine(stdout)}`,
        "failed",
      );
    }
    return {
      id: raw.id,
      pid: raw.pid,
      status: raw.status as RuntimeStatus,
      bundle: typeof raw.bundle === "string" ? raw.bundle : "",
    };
  }

  /**
   * Deletes the container's runtime state. With `force`, a container that is not stopped is
   * first killed (SIGKILL to all its processes) and its init waited for: `runc delete --force`
   * would do the same but sleeps in 100 ms steps. Deleting an unknown container is not an error.
   */
  async delete(id: string, options: { force?: boolean; signal?: AbortSignal } = {}): Promise<void> {
    if (options.force === true) {
      const state = await this.state(id, options);
      if (state === undefined) return;
      if (state.status !== "stopped") {
        await this.kill(id, "SIGKILL", { all: true, signal: options.signal }).catch((error: unknown) => {
          if (!(error instanceof RuntimeError && error.reason === "not-running")) throw error;
        });
        await waitForExit(state.pid, this.timeoutMs, options.signal);
      }
    }
    try {
      await this.exec(["delete", id], options.signal);
    } catch (error) {
      if (error instanceof RuntimeError && error.reason === "not-found") return;
      throw error;
    }
  }

  private async exec(args: string[], signal?: AbortSignal): Promise<string> {
    const command = `${this.info.kind} ${args.join(" ")}`;
    try {
      return (await run(this.info.path, ["--root", this.root, ...args], this.timeoutMs, signal)).stdout;
    } catch (error) {
      if ((error as Error).name === "AbortError") throw error;
      const failed = error as { killed?: boolean; stderr?: string; message: string };
      const stderr = failed.stderr ?? "";
      if (failed.killed === true)
        throw new RuntimeError(`${command}: timed out after ${this.timeoutMs} ms`, "timeout");
      const message = runtimeMessage(stderr) || failed.message;
      throw new RuntimeError(`${command}: ${message}`, reasonOf(message, this.root), stderr);
    }
  }
}

function run(
  file: string,
  args: string[],
  timeoutMs: number,
  signal: AbortSignal | undefined,
): Promise<{ stdout: string; stderr: string }> {
  // On failure the error carries stdout, stderr and `killed` (set when the timeout fired).
  return execFileAsync(file, args, {
    timeout: timeoutMs,
    killSignal: "SIGKILL",
    signal,
    encoding: "utf8",
    maxBuffer: 1024 * 1024,
  });
}

/** runc logs `level=error msg="..."`; crun prints the message as is. */
function runtimeMessage(stderr: string): string {
  const messages = [...stderr.matchAll(/msg="((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]!.replace(/\\"/g, '"'));
  return (messages.length > 0 ? messages.join("; ") : stderr).trim();
}

/** runc: "container does not exist"; crun: it cannot open the container's state under --root. */
function reasonOf(message: string, root: string): RuntimeErrorReason {
  if (/does not exist/.test(message) || (message.includes(root) && /No such file or directory/.test(message)))
    return "not-found";
  if (/not running|is stopped/i.test(message)) return "not-running";
  return "failed";
}

/** Waits until `pid` has exited (gone or a zombie: the runtime then reports "stopped"). */
async function waitForExit(pid: number, timeoutMs: number, signal?: AbortSignal): Promise<void> {
  if (pid <= 0) return;
  const deadline = Date.now() + timeoutMs;
  for (let delay = 1; ; delay = Math.min(delay * 2, 50)) {
    let stat: string;
    try {
      stat = await readFile(`/proc/${pid}/stat`, "utf8");
    } catch {
      return;
    }
    // The state follows the parenthesised command name, which may itself contain ") ".
    const processState = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    if (processState === "Z" || processState === "X") return;
    if (Date.now() > deadline)
      throw new RuntimeError(`container init ${pid} did not exit after SIGKILL`, "timeout");
    await sleep(delay, undefined, { signal });
  }
}

function firstLine(text: string): string {
  return text.split("\n", 1)[0]!.trim();
}
