/** Output helpers: docker-style tables and wire-JSON lines for `--json`. */
import { encodeMessage } from "../protocol/codec.js";
import { describeExitStatus } from "../protocol/exit-status.js";
import type { Notification, Response } from "../protocol/messages.js";

/** Left-aligned columns separated by three spaces, headers in capitals. */
export function table(headers: string[], rows: string[][]): string[] {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join("   ")
      .trimEnd();
  return [line(headers), ...rows.map(line)];
}

export function responseJson(response: Response): string {
  return encodeMessage({ type: "response", response }).trimEnd();
}

export function notificationJson(notification: Notification): string {
  return encodeMessage({ type: "notification", notification }).trimEnd();
}

/** One human line per notification. */
export function describeNotification(n: Notification): string {
  switch (n.type) {
    case "c_group": {
      const counts = Object.entries(n.memory)
        .filter(([, v]) => v !== null && v !== undefined)
        .map(([k, v]) => `${k}=${String(v)}`)
        .join(" ");
      return `c_group    ${n.container} memory ${counts}`;
    }
    case "exit": {
      return `exit       ${n.container} ${describeExitStatus(n.status, { details: "parenthesised" })}`;
    }
    case "shutdown":
      return "shutdown";
    case "restarted":
      return `restarted  ${n.container} (it rebooted itself and runs again)`;
    case "lagged":
      return `lagged     ${n.missed} notifications missed`;
    case "power":
      return `power      ${n.container} ${n.state} (#${n.sequence})`;
    case "health":
      return `health     ${n.health.status}${n.health.problems.length ? `: ${n.health.problems.join("; ")}` : ""}`;
    default:
      return `${n.type.padEnd(10)} ${n.container}`;
  }
}
