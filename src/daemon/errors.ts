/**
 * The daemon's errors, and the one conversion of an internal failure into the console's
 * `WireError` (as Northstar's runtime/error.rs converts into its model's `Error`).
 *
 * Failures stay typed until the edge: a step or an executor throws (or reports) a
 * `DaemonError` or whatever a library threw; only `toWireError` turns it into a wire value,
 * and only `dialect.ts` projects that value onto Northstar 0.9.2's variants for a Northstar
 * connection (`northstarError`), so Skiff's richer errors reach Skiff clients alone.
 *
 * Best-effort cleanups (`bestEffort`) say what they swallowed, and why skiffd stops is a
 * `ShutdownReason`, from which its exit code follows.
 */
import type { ContainerId } from "../protocol/container.js";
import type { WireError } from "../protocol/messages.js";
import { NpkError } from "../npk/errors.js";
import { messageOf } from "../common/errors.js";

/** What went wrong, in the daemon's words. Each has exactly one wire form (`failureToWire`). */
export type DaemonFailure =
  /** The operation needs a running instance and there is none. */
  | { kind: "not_running"; container: ContainerId }
  /** The instance ended while the operation was under way. */
  | { kind: "ended"; container: ContainerId }
  /** This daemon cannot do `what` (a request, or a feature the host lacks). */
  | { kind: "unsupported"; what: string }
  /** The daemon is stopping and takes no new work. */
  | { kind: "shutting_down" };

/** A typed failure, thrown by executors and caught at the edge by `toWireError`. */
export class DaemonError extends Error {
  override name = "DaemonError";
  constructor(
    readonly failure: DaemonFailure,
    options?: { cause?: unknown },
  ) {
    super(describeFailure(failure), options);
  }
}

function describeFailure(f: DaemonFailure): string {
  switch (f.kind) {
    case "not_running":
      return `${f.container} is not running`;
    case "ended":
      return `${f.container} has ended`;
    case "unsupported":
      return `unsupported: ${f.what}`;
    case "shutting_down":
      return "the daemon is shutting down";
  }
}

/** Pure: the wire error of a daemon failure (the Skiff dialect's variant). */
export function failureToWire(f: DaemonFailure): WireError {
  switch (f.kind) {
    case "unsupported":
      return { type: "unsupported", request: f.what };
    case "not_running":
    case "ended":
    case "shutting_down":
      return { type: "unexpected", error: describeFailure(f) };
  }
}

export { messageOf } from "../common/errors.js";

/**
 * The one conversion of a thrown value into a wire error. `context` (e.g. the container) goes
 * in front of the text of errors that carry only text. A package that cannot be read or
 * verified is the caller's mistake (`invalid_arguments`); anything unforeseen is `unexpected`.
 */
export function toWireError(e: unknown, context?: string): WireError {
  const prefix = context === undefined ? "" : `${context}: `;
  if (e instanceof DaemonError) return failureToWire(e.failure);
  if (e instanceof NpkError) return { type: "invalid_arguments", cause: `${prefix}${e.kind}: ${e.message}` };
  return { type: "unexpected", error: `${prefix}${messageOf(e)}` };
}

/** What `bestEffort` logs to (a pino logger is one). */
export interface CleanupLog {
  warn(details: object, message: string): void;
  debug(details: object, message: string): void;
}

/** Errors a cleanup expects when there is nothing (left) to clean: not worth a warning. */
const NOTHING_TO_CLEAN = new Set(["ENOENT", "ESRCH"]);

const nothingToClean = (e: unknown): boolean => {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  return code !== undefined && NOTHING_TO_CLEAN.has(code);
};

/**
 * Awaits a cleanup whose failure must not stop the caller (`undefined`: nothing to await), and
 * logs what it swallowed: a warning, or a debug line for a failure the caller `expected`
 * (by default: there was nothing to clean, ENOENT or ESRCH). Never rejects.
 */
export async function bestEffort(
  log: CleanupLog,
  what: string,
  work: Promise<unknown> | undefined,
  expected: (e: unknown) => boolean = nothingToClean,
): Promise<void> {
  try {
    await work;
  } catch (e) {
    if (expected(e)) log.debug({ err: e }, `${what}: ${messageOf(e)}`);
    else log.warn({ err: e }, `${what} failed (ignored): ${messageOf(e)}`);
  }
}

/**
 * `bestEffort` for work whose value the caller uses when there is one: the value, or
 * `undefined` after a failure, which is logged as `bestEffort` logs it. Never rejects.
 */
export async function bestEffortValue<T>(
  log: CleanupLog,
  what: string,
  work: Promise<T>,
  expected: (e: unknown) => boolean = nothingToClean,
): Promise<T | undefined> {
  let value: T | undefined;
  await bestEffort(
    log,
    what,
    work.then((v) => {
      value = v;
    }),
    expected,
  );
  return value;
}

/** Why skiffd stops; its exit code follows from the kind (`shutdownExitCode`). */
export type ShutdownReason =
  /** A console `shutdown` request. */
  | { kind: "request" }
  /** The host: a signal to skiffd, or the program that embeds the runtime (tests). */
  | { kind: "host"; cause: string }
  /** A critical container failed to start or exited (`failure` says which and how). */
  | { kind: "critical_container"; container: ContainerId; failure: string };

export function describeShutdown(r: ShutdownReason): string {
  switch (r.kind) {
    case "request":
      return "shutdown request";
    case "host":
      return r.cause;
    case "critical_container":
      return `critical container ${r.container} ${r.failure}`;
  }
}

/** skiffd's exit code: 1 when a critical container brought the daemon down, else 0. */
export function shutdownExitCode(r: ShutdownReason): number {
  switch (r.kind) {
    case "request":
    case "host":
      return 0;
    case "critical_container":
      return 1;
  }
}
