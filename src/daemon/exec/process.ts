/**
 * The pure parts of `exec`: whether a container can take one now, and the OCI process the
 * runtime starts for it (`<runtime> exec --process FILE`).
 *
 * Why `--process` and not `exec`'s flags: without it the runtime takes the bundle's
 * `process` and can only add capabilities (`--cap`). Skiff's spec grants skiff-init
 * `CAP_SYS_ADMIN`/`CAP_SETPCAP` for unmounting `/proc` when the manifest does not mount it, and
 * init drops them before the app starts (docs/runtime.md); an exec'd process must get exactly
 * the app's capabilities, so the process is written out in full: the bundle's process (user,
 * env, rlimits, no_new_privileges, labels) with the request's argv, env, cwd and user, and the
 * manifest's capabilities in all five sets.
 */
import type { ExecRequest, PowerState, WireError } from "../../protocol/messages.js";
import { sameInEverySet } from "../oci/spec.js";

/** PATH of an exec whose container and request set none (runc's and Docker's default). */
export const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** What the guard reads of a container's state (state/model.ts's ContainerRecord has it). */
export interface ExecTarget {
  process?: {
    phase: string;
    power: { state: PowerState; busy?: string };
  };
}

/**
 * Pure: why `container` cannot take an exec now, or undefined. A paused or asleep container
 * would freeze the new process in its frozen cgroup (the runtime may hang on it), and a
 * freezer operation in flight would race with it: all are refused.
 */
export function execRefusal(container: string, target: ExecTarget | undefined): WireError | undefined {
  if (target === undefined) return { type: "invalid_container", container };
  const process = target.process;
  if (process === undefined || process.phase !== "running")
    return { type: "stop_container_not_started", container };
  const { state, busy } = process.power;
  if (state === "paused")
    return { type: "exec_failed", container, error: "the container is paused; resume it first" };
  if (state === "asleep")
    return { type: "exec_failed", container, error: "the container is suspended; wake it first" };
  if (busy !== undefined)
    return { type: "exec_failed", container, error: `a freezer operation (${busy}) is in progress` };
  return undefined;
}

/** The members of the bundle's `process` an exec keeps (others come from the request). */
export interface SpecProcess {
  user: { uid: number; gid: number; additionalGids?: number[] };
  env: string[];
  cwd: string;
  [key: string]: unknown;
}

/**
 * Pure: the OCI process of an exec. `spec` is the bundle's `process`, `capabilities` the
 * manifest's. A uid without a gid runs with gid = uid (not root's group); a given uid drops
 * the container user's additional groups.
 */
export function execProcess(
  spec: SpecProcess,
  capabilities: readonly string[],
  request: Pick<ExecRequest, "command" | "environment" | "cwd" | "uid" | "gid" | "tty">,
): Record<string, unknown> {
  const overridden = new Set(Object.keys(request.environment));
  const env = [
    ...spec.env.filter((entry) => !overridden.has(entry.slice(0, Math.max(0, entry.indexOf("="))))),
    ...Object.entries(request.environment).map(([k, v]) => `${k}=${v}`),
  ];
  // The command is looked up in PATH: an app started by absolute path may have none.
  if (!env.some((entry) => entry.startsWith("PATH="))) env.push(`PATH=${DEFAULT_PATH}`);
  const user = request.uid === null ? spec.user : { uid: request.uid, gid: request.gid ?? request.uid };
  return {
    ...spec,
    terminal: request.tty,
    user,
    args: [...request.command],
    env,
    cwd: request.cwd ?? spec.cwd,
    capabilities: sameInEverySet(capabilities),
  };
}

const BIGINT_MARK = "\u0000bigint:";

/**
 * Pure: parses JSON, keeping integers beyond 2^53 exact as bigint (config.json's rlimits hold
 * RLIM_INFINITY, 2^64-1). Integer tokens outside strings with 16 or more digits are quoted
 * with a marker first; a scan that tracks strings and escapes keeps string content untouched.
 */
export function parseJsonExact(text: string): unknown {
  let out = "";
  let from = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (inString) {
      if (c === "\\") i++;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') {
      inString = true;
      continue;
    }
    if (c === "-" || (c >= "0" && c <= "9")) {
      let j = i + 1;
      while (j < text.length && /[0-9.eE+-]/.test(text[j]!)) j++;
      const token = text.slice(i, j);
      if (/^-?\d{16,}$/.test(token)) {
        out += text.slice(from, i) + JSON.stringify(BIGINT_MARK + token);
        from = j;
      }
      i = j - 1;
    }
  }
  out += text.slice(from);
  return JSON.parse(out, (_key, value: unknown) =>
    typeof value === "string" && value.startsWith(BIGINT_MARK)
      ? BigInt(value.slice(BIGINT_MARK.length))
      : value,
  );
}

/** Pure: JSON with bigint values written as exact integers (the inverse of parseJsonExact). */
export function stringifyJsonExact(value: unknown): string {
  const text = JSON.stringify(value, (_key, v: unknown) =>
    typeof v === "bigint" ? BIGINT_MARK + v.toString() : v,
  );
  return text.replace(/"\\u0000bigint:(-?\d+)"/g, "$1");
}

/** runc logs `time=... level=error msg="..."`; crun prints the message as it is. */
export function runtimeErrorText(stderr: string): string {
  const messages = [...stderr.matchAll(/msg="((?:[^"\\]|\\.)*)"/g)].map((m) =>
    m[1]!.replace(/\\(["\\])/g, "$1"),
  );
  const text = (messages.length > 0 ? messages.join("; ") : stderr).trim();
  // A crashing runtime prints its whole stack: the start says what happened.
  return text.length > MAX_ERROR_TEXT ? `${text.slice(0, MAX_ERROR_TEXT)}...` : text;
}

const MAX_ERROR_TEXT = 500;
