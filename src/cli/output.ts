/**
 * Everything a command prints goes through here: docker-style tables, human lines, and for
 * `--json` the wire lines the daemon sent (`printResult`) or a local command's value.
 */
import type { Client } from "../client/client.js";
import { encodeMessage } from "../protocol/codec.js";
import { describeExitStatus } from "../protocol/exit-status.js";
import type { Notification, Response } from "../protocol/messages.js";
import type { CommandContext } from "./command.js";

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

/** What a command tells a person: one line (which may hold newlines), or several. */
export type Human = string | readonly string[];

function printHuman(ctx: CommandContext, human: Human): void {
  if (typeof human === "string") ctx.out(human);
  else for (const line of human) ctx.out(line);
}

/**
 * The one output path of commands that talk to the daemon: with `--json` the response the daemon
 * sent to the command's latest request, one wire line, never rebuilt by the command; otherwise
 * `human`.
 */
export function printResult(ctx: CommandContext, client: Client, human: Human): void {
  if (ctx.global.json) printResponse(ctx, client);
  else printHuman(ctx, human);
}

/** `--json` alone: for commands whose human output takes further requests (e.g. `list`). */
export function printResponse(ctx: CommandContext, client: Client): void {
  const response = client.lastResponse;
  if (response === undefined) throw new Error("BUG: --json output before any response arrived");
  ctx.out(responseJson(response));
}

/** The output path of commands that work without the daemon: `--json` prints `value` as JSON. */
export function printValue(ctx: CommandContext, value: unknown, human: Human): void {
  if (ctx.global.json) ctx.out(JSON.stringify(value));
  else printHuman(ctx, human);
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
