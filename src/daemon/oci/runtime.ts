/**
 * The OCI runtime binary (runc, or crun where it works): which one, where, and whether it can work
 * on this host, checked once at daemon start. skiff-monitor runs `<runtime> create`, `kill` and
 * `delete` with Skiff's --root; the daemon runs only `--version` (toolchain/health.ts) and
 * `checkpoint` (containers/checkpoint.ts) itself.
 *
 * Names: a type called `Runtime*` is the daemon's (`Runtime`, `RuntimeState`, the client's
 * `RuntimeError`), as Northstar calls its daemon the runtime; the binary's types say `Oci`.
 */
import { execFile } from "node:child_process";
import { access, constants } from "node:fs/promises";
import { delimiter, join } from "node:path";
import { promisify } from "node:util";
import type { CgroupLayout } from "../cgroups/layout.js";
import { messageOf } from "../../common/errors.js";

export type OciRuntimeKind = "runc" | "crun";

export interface OciRuntimeConfig {
  kind: OciRuntimeKind;
  /** Binary path; default: `kind` looked up in PATH. */
  path?: string;
}

export interface OciRuntimeInfo {
  kind: OciRuntimeKind;
  path: string;
  /** e.g. "1.1.5+ds1". */
  version: string;
}

const DEFAULT_TIMEOUT_MS = 10_000;
const execFileAsync = promisify(execFile);

/** The absolute path of `name` on PATH, or `name` itself when it is not there (the caller reports it). */
export async function findOnPath(name: string): Promise<string> {
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

/**
 * Checks that the configured runtime exists, runs and can work on this host. crun (1.8.1 tested)
 * refuses hybrid cgroup hosts ("cgroups in hybrid mode not supported, drop all controllers from
 * cgroupv2"), so it is refused here at daemon start rather than at every container start.
 */
export async function detectOciRuntime(
  config: OciRuntimeConfig,
  layout: CgroupLayout,
  signal?: AbortSignal,
): Promise<OciRuntimeInfo> {
  // The monitor execs the runtime without a PATH search: always hand it an absolute path.
  const path = config.path ?? (await findOnPath(config.kind));
  let stdout: string;
  try {
    stdout = (await run(path, ["--version"], DEFAULT_TIMEOUT_MS, signal)).stdout;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new Error(`OCI runtime ${config.kind}: ${path} not found`);
    throw new Error(`OCI runtime ${config.kind}: "${path} --version" failed: ${messageOf(error)}`);
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

function firstLine(text: string): string {
  return text.split("\n", 1)[0]!.trim();
}
