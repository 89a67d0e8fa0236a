/**
 * The one rendering of an exit status for people: the CLI, the daemon's log lines and the
 * error texts that carry a status all use it, so "exit code 3" / "signal 9" read the same
 * everywhere.
 */
import { constants } from "node:os";
import type { ExitStatus } from "./messages.js";

/** The conventional name of a signal number, e.g. SIGKILL for 9; undefined for real-time ones. */
export function signalName(signal: number): string | undefined {
  return Object.entries(constants.signals).find(([, n]) => n === signal)?.[0];
}

export interface ExitStatusStyle {
  /** Add the signal's name: `signal 9 (SIGKILL)`. */
  signalNames?: boolean;
  /** How the daemon's view (`reason`, `oom`) follows: `, reason x, oom` or ` (reason x, oom)`. */
  details?: "comma" | "parenthesised";
}

/** `exit code N` or `signal N`, then the reason and oom if the daemon saw them. */
export function describeExitStatus(status: ExitStatus, style: ExitStatusStyle = {}): string {
  const name = style.signalNames && status.type === "signalled" ? signalName(status.signal) : undefined;
  const how =
    status.type === "exit"
      ? `exit code ${status.code}`
      : `signal ${status.signal}${name ? ` (${name})` : ""}`;
  const details = [status.reason && `reason ${status.reason}`, status.oom && "oom"]
    .filter(Boolean)
    .join(", ");
  if (!details) return how;
  return style.details === "parenthesised" ? `${how} (${details})` : `${how}, ${details}`;
}
