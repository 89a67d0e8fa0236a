/**
 * Container lifecycle commands: start, kill, stop, logs, ps. Argument parsing is kept in pure
 * functions (`parse*`, `describe*`, `format*`) so it can be tested without a daemon.
 */
import { constants } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import type { Client } from "../../client/client.js";
import { RuntimeError } from "../../client/errors.js";
import { nameOf, versionOf, type ContainerId } from "../../protocol/container.js";
import { describeExitStatus, signalName } from "../../protocol/exit-status.js";
import type { ContainerData } from "../../protocol/messages.js";
import { EXIT_OK, UsageError, type Command, type ParsedCommand } from "../command.js";
import { printResponse, printResult, table } from "../output.js";
import { resolveContainer } from "../resolve.js";
import { onContainer, withClient } from "./session.js";

const FOLLOW_INTERVAL_MS = 200;
const SIGTERM = 15;
const MAX_SIGNAL = 64; // SIGRTMAX on Linux

// ---------------------------------------------------------------------------------------------
// Pure argument handling.

/** A signal given as a number (1-64) or a name with or without SIG, in any case: TERM, sigkill. */
export function parseSignal(text: string): number {
  if (/^[0-9]+$/.test(text)) {
    const n = Number(text);
    if (n >= 1 && n <= MAX_SIGNAL) return n;
    throw new UsageError(`signal ${text} is out of range (1-${MAX_SIGNAL})`);
  }
  const upper = text.toUpperCase();
  const name = upper.startsWith("SIG") ? upper : `SIG${upper}`;
  const n = (constants.signals as Record<string, number | undefined>)[name];
  if (n === undefined) throw new UsageError(`unknown signal ${text}`);
  return n;
}

/** `-e K=V` values as an environment; the value may contain `=`, the key may not be empty. */
export function parseEnvironment(assignments: readonly string[]): Record<string, string> {
  const environment: Record<string, string> = {};
  for (const assignment of assignments) {
    const eq = assignment.indexOf("=");
    if (eq <= 0) throw new UsageError(`-e takes KEY=VALUE, got ${JSON.stringify(assignment)}`);
    const key = assignment.slice(0, eq);
    if (Object.hasOwn(environment, key)) throw new UsageError(`-e ${key} is given twice`);
    environment[key] = assignment.slice(eq + 1);
  }
  return environment;
}

function wholeNumber(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  if (!/^[0-9]+$/.test(text) || !Number.isSafeInteger(Number(text))) {
    throw new UsageError(`${flag} takes a whole number, got ${JSON.stringify(text)}`);
  }
  return Number(text);
}

function stringValues(value: ParsedCommand["values"][string]): string[] {
  if (value === undefined) return [];
  return (Array.isArray(value) ? value : [value]).filter((v): v is string => typeof v === "string");
}

export interface StartArguments {
  name: string;
  init: string | undefined;
  arguments: string[];
  environment: Record<string, string>;
  /** `--debug-hold`: skiff-init keeps the container when its app ends (native/init/init.c). */
  debugHold: boolean;
}

/** The environment variable that asks skiff-init for the debug hold (it removes it before the app). */
export const DEBUG_HOLD_ENV = "SKIFF_DEBUG_HOLD";

/**
 * `skiff start NAME [-e K=V]... [-- INIT ARGS...]`. Everything after `--` is positional, so the
 * words after NAME are the init override and its arguments; `-e` must come before `--`.
 */
export function parseStartArguments({ values, positionals }: ParsedCommand): StartArguments {
  const [name, init, ...args] = positionals;
  if (name === undefined) throw new UsageError("start takes a container");
  const environment = parseEnvironment(stringValues(values.env));
  if (Object.hasOwn(environment, DEBUG_HOLD_ENV))
    throw new UsageError(`use --debug-hold, not -e ${DEBUG_HOLD_ENV}`);
  return { name, init, arguments: args, environment, debugHold: values["debug-hold"] === true };
}

/**
 * The start request's environment. A request's env replaces the manifest's (Northstar), so with
 * `--debug-hold` and no `-e` the manifest's env is sent along with the hold: the container must
 * see the env it fails with.
 */
export function startEnvironment(
  args: StartArguments,
  manifest: Record<string, unknown> | undefined,
): Record<string, string> {
  if (!args.debugHold) return args.environment;
  const explicit = Object.keys(args.environment).length > 0;
  const fromManifest = (manifest?.env ?? {}) as Record<string, string>;
  return { ...(explicit ? args.environment : fromManifest), [DEBUG_HOLD_ENV]: "1" };
}

/** `skiff kill NAME [SIGNAL]`: SIGTERM unless a signal is given. */
export function parseKillArguments({ positionals }: ParsedCommand): { name: string; signal: number } {
  const [name, signal] = positionals;
  if (name === undefined || positionals.length > 2)
    throw new UsageError("kill takes a container and a signal");
  return { name, signal: signal === undefined ? SIGTERM : parseSignal(signal) };
}

/** `skiff stop NAME [-t SECONDS]`: `-t` is the stop timeout here, not the request timeout. */
export function parseStopArguments({ values, positionals }: ParsedCommand): {
  name: string;
  timeoutSeconds: number | undefined;
} {
  if (positionals.length !== 1) throw new UsageError("stop takes one container");
  return { name: positionals[0]!, timeoutSeconds: wholeNumber(stringValues(values.timeout).at(-1), "-t") };
}

/** `skiff logs [-f] [-n N] NAME`. */
export function parseLogsArguments({ values, positionals }: ParsedCommand): {
  name: string;
  follow: boolean;
  lines: number | undefined;
} {
  if (positionals.length !== 1) throw new UsageError("logs takes one container");
  const lines = wholeNumber(stringValues(values.lines).at(-1), "-n");
  return { name: positionals[0]!, follow: values.follow === true, lines };
}

/** An uptime in nanoseconds as `45s`, `12m03s`, `5h07m` or `3d02h`. */
export function formatUptime(ns: number): string {
  const s = Math.floor(ns / 1e9);
  const two = (n: number): string => String(n).padStart(2, "0");
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${two(s % 60)}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${two(Math.floor(s / 60) % 60)}m`;
  return `${Math.floor(s / 86400)}d${two(Math.floor(s / 3600) % 24)}h`;
}

/** Bytes in binary units with one decimal: `812 B`, `4.0 KiB`, `12.3 MiB`. */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** One `ps` row, or undefined for a container that does not run. */
export function psRow(id: ContainerId, data: ContainerData): string[] | undefined {
  const running = data.process;
  if (running === null) return undefined;
  const memory = running.statistics.memory as { usage?: unknown } | undefined;
  return [
    nameOf(id),
    versionOf(id),
    String(running.pid),
    formatUptime(running.uptime),
    running.started_by ?? "-",
    typeof memory?.usage === "number" ? formatBytes(memory.usage) : "-",
  ];
}

// ---------------------------------------------------------------------------------------------
// Commands.

const start: Command = {
  name: "start",
  summary: "Start a container, optionally with another init, arguments and environment",
  usage: "skiff start CONTAINER [--debug-hold] [-e KEY=VALUE]... [-- INIT ARGS...]",
  options: {
    env: { type: "string", short: "e", multiple: true },
    "debug-hold": { type: "boolean" },
  },
  async run(ctx, parsed) {
    const args = parseStartArguments(parsed);
    return onContainer(ctx, args.name, async (client, container) => {
      const manifest = args.debugHold ? (await client.inspect(container)).manifest : undefined;
      await client.start(container, {
        ...(args.init === undefined ? {} : { init: args.init }),
        arguments: args.arguments,
        environment: startEnvironment(args, manifest),
      });
      return `started ${container}`;
    });
  },
};

const kill: Command = {
  name: "kill",
  summary: "Send a signal to a container's init (default SIGTERM)",
  usage: "skiff kill CONTAINER [SIGNAL]",
  async run(ctx, parsed) {
    const { name, signal } = parseKillArguments(parsed);
    return onContainer(ctx, name, async (client, container) => {
      await client.kill(container, signal);
      return `sent ${signalName(signal) ?? `signal ${signal}`} to ${container}`;
    });
  },
};

const stop: Command = {
  name: "stop",
  summary: "Stop a container: SIGTERM, then SIGKILL after -t seconds; prints how it ended",
  usage: "skiff stop CONTAINER [-t SECONDS]",
  async run(ctx, parsed) {
    const { name, timeoutSeconds } = parseStopArguments(parsed);
    // No request deadline: the daemon ends the wait itself with SIGKILL after the stop timeout.
    return onContainer(
      ctx,
      name,
      async (client, container) => {
        const status = await client.stop(container, timeoutSeconds);
        return `stopped ${container}: ${describeExitStatus(status, { signalNames: true })}`;
      },
      { timeout: 0 },
    );
  },
};

const logs: Command = {
  name: "logs",
  summary: "Print a container's log (-f: follow it until interrupted)",
  usage: "skiff logs [-f] [-n LINES] CONTAINER",
  options: { follow: { type: "boolean", short: "f" }, lines: { type: "string", short: "n" } },
  async run(ctx, parsed) {
    const args = parseLogsArguments(parsed);
    return withClient(ctx, async (client) => {
      const container = await resolveContainer(client, args.name);
      const print = (answer: { lines: string[]; offset: number }): void =>
        printResult(ctx, client, answer.lines);
      let answer = await client.logs(container, args.lines === undefined ? {} : { lines: args.lines });
      print(answer);
      while (args.follow && (await pause(ctx.signal))) {
        answer = await client.logs(container, { offset: answer.offset });
        if (answer.lines.length > 0) print(answer);
      }
      return EXIT_OK;
    });
  },
};

/** Waits one follow interval; false once the command is aborted. */
async function pause(signal: AbortSignal): Promise<boolean> {
  try {
    await sleep(FOLLOW_INTERVAL_MS, undefined, { signal });
    return true;
  } catch (e) {
    if (signal.aborted) return false;
    throw e;
  }
}

const ps: Command = {
  name: "ps",
  summary: "List running containers with pid, uptime, who started them and memory",
  usage: "skiff ps",
  async run(ctx, { positionals }) {
    if (positionals.length > 0) throw new UsageError("ps takes no arguments");
    return withClient(ctx, async (client) => {
      const rows: string[][] = [];
      for (const container of await client.list()) {
        const data = await inspectIfInstalled(client, container);
        if (!data?.process) continue;
        if (ctx.global.json) printResponse(ctx, client);
        else rows.push(psRow(container, data)!);
      }
      if (!ctx.global.json)
        table(["NAME", "VERSION", "PID", "UPTIME", "STARTED-BY", "MEMORY"], rows).forEach((l) => ctx.out(l));
      return EXIT_OK;
    });
  },
};

async function inspectIfInstalled(
  client: Client,
  container: ContainerId,
): Promise<ContainerData | undefined> {
  try {
    return await client.inspect(container);
  } catch (e) {
    // Uninstalled between list and inspect: not an error of this command.
    if (e instanceof RuntimeError) return undefined;
    throw e;
  }
}

export const containerCommands: Command[] = [start, stop, kill, logs, ps];
