/**
 * Power commands: pause, resume, suspend, wakelock, wakesource, proxy and power. Argument
 * parsing and formatting are pure functions (`parse*`, `format*`, `describe*`), tested without
 * a daemon.
 */
import { parseDuration } from "../../common/units.js";
import type { ContainerId } from "../../protocol/container.js";
import type { PowerInfo, ProxyFraming, WakeSource } from "../../protocol/messages.js";
import { UsageError, type Command, type ParsedCommand } from "../command.js";
import { containerVerb, onContainer, parseContainerArgument } from "./session.js";
import { messageOf } from "../../common/errors.js";

const FRAMINGS: readonly ProxyFraming[] = ["newline", "length", "datagram"];

// ---------------------------------------------------------------------------------------------
// Pure argument handling.

/** The last string given for an option (a repeated option counts once, the last wins). */
function lastString(value: ParsedCommand["values"][string]): string | undefined {
  const values = value === undefined ? [] : Array.isArray(value) ? value : [value];
  return values.filter((v): v is string => typeof v === "string").at(-1);
}

/** A duration option in milliseconds: `500ms`, `5s`, `1m30s`, or a bare number of seconds. */
export function parseDurationOption(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  try {
    return parseDuration(text, { bareSeconds: true });
  } catch (e) {
    throw new UsageError(`${flag}: ${messageOf(e)}`);
  }
}

/** `skiff suspend NAME [--max-sleep DURATION]`. */
export function parseSuspendArguments(parsed: ParsedCommand): {
  name: string;
  maxSleepMs: number | undefined;
} {
  const name = parseContainerArgument(parsed, "suspend");
  return { name, maxSleepMs: parseDurationOption(lastString(parsed.values["max-sleep"]), "--max-sleep") };
}

export type WakeLockArguments =
  | { action: "acquire"; name: string; lock: string; timeoutMs: number | undefined }
  | { action: "release"; name: string; lock: string };

/**
 * `skiff wakelock acquire|release NAME LOCK [--timeout DURATION]`. `--timeout` is the lock's
 * lifetime here (acquire only), like `stop -t` is the stop timeout.
 */
export function parseWakeLockArguments({ values, positionals }: ParsedCommand): WakeLockArguments {
  const [action, name, lock] = positionals;
  if (positionals.length !== 3 || (action !== "acquire" && action !== "release") || !lock) {
    throw new UsageError("wakelock takes acquire or release, a container and a lock name");
  }
  const timeoutText = lastString(values.timeout);
  if (action === "release") {
    if (timeoutText !== undefined) throw new UsageError("--timeout is for acquire only");
    return { action, name: name!, lock };
  }
  return { action, name: name!, lock, timeoutMs: parseDurationOption(timeoutText, "--timeout") };
}

export type WakeSourceArguments =
  | { action: "add"; name: string; sourceName: string; source: WakeSource }
  | { action: "remove"; name: string; sourceName: string };

const SOURCE_FLAGS = ["path", "timer-after", "timer-at", "proxy"] as const;

/**
 * `skiff wakesource add NAME SOURCE_NAME (--path P | --timer-after DURATION | --timer-at
 * EPOCH_MS | --proxy CHANNEL)` or `skiff wakesource remove NAME SOURCE_NAME`.
 */
export function parseWakeSourceArguments({ values, positionals }: ParsedCommand): WakeSourceArguments {
  const [action, name, sourceName] = positionals;
  if (positionals.length !== 3 || (action !== "add" && action !== "remove") || !sourceName) {
    throw new UsageError("wakesource takes add or remove, a container and a source name");
  }
  const given = SOURCE_FLAGS.filter((flag) => lastString(values[flag]) !== undefined);
  if (action === "remove") {
    if (given.length > 0) throw new UsageError(`remove takes no --${given[0]}`);
    return { action, name: name!, sourceName };
  }
  if (given.length !== 1) {
    throw new UsageError("add takes exactly one of --path, --timer-after, --timer-at, --proxy");
  }
  const flag = given[0]!;
  const text = lastString(values[flag])!;
  if (text.length === 0) throw new UsageError(`--${flag} is empty`);
  return { action, name: name!, sourceName, source: wakeSourceOf(flag, text) };
}

function wakeSourceOf(flag: (typeof SOURCE_FLAGS)[number], text: string): WakeSource {
  switch (flag) {
    case "path":
      return { type: "path", path: text };
    case "proxy":
      return { type: "proxy", channel: text };
    case "timer-after":
      return { type: "timer", after_ms: parseDurationOption(text, "--timer-after")! };
    case "timer-at":
      if (!/^[0-9]+$/.test(text) || !Number.isSafeInteger(Number(text))) {
        throw new UsageError(`--timer-at takes epoch milliseconds, got ${JSON.stringify(text)}`);
      }
      return { type: "timer", at_ms: Number(text) };
  }
}

export interface ProxyArguments {
  name: string;
  channel: string;
  listen: string;
  target: string;
  framing: ProxyFraming | undefined;
}

/** `skiff proxy NAME CHANNEL --listen URL --target URL [--framing newline|length|datagram]`. */
export function parseProxyArguments({ values, positionals }: ParsedCommand): ProxyArguments {
  const [name, channel] = positionals;
  if (positionals.length !== 2 || !channel)
    throw new UsageError("proxy takes a container and a channel name");
  const listen = lastString(values.listen);
  const target = lastString(values.target);
  if (!listen || !target) throw new UsageError("proxy needs --listen URL and --target URL");
  const framing = lastString(values.framing);
  if (framing !== undefined && !(FRAMINGS as readonly string[]).includes(framing)) {
    throw new UsageError(`--framing takes ${FRAMINGS.join(", ")}, got ${JSON.stringify(framing)}`);
  }
  return { name: name!, channel, listen, target, framing: framing as ProxyFraming | undefined };
}

// ---------------------------------------------------------------------------------------------
// Pure formatting.

/** Nanoseconds as seconds with millisecond precision: `1.234 s`. */
export function formatSeconds(ns: number): string {
  return `${(ns / 1e9).toFixed(3)} s`;
}

/** `suspended 1.234 s, woken by: proxy-http`. */
export function formatSuspend(suspendTimeNs: number, resumeReason: string): string {
  return `suspended ${formatSeconds(suspendTimeNs)}, woken by: ${resumeReason}`;
}

/** An epoch time in ms as ISO 8601; beyond what Date can show (year 275760), the number. */
function isoTime(ms: number): string {
  const date = new Date(ms);
  return Number.isNaN(date.getTime()) ? `${ms} ms after the epoch` : date.toISOString();
}

export function describeWakeSource(source: WakeSource): string {
  switch (source.type) {
    case "path":
      return `path ${source.path}`;
    case "proxy":
      return `proxy channel ${source.channel}`;
    case "timer":
      return source.at_ms !== undefined
        ? `timer at ${isoTime(source.at_ms)}`
        : `timer after ${source.after_ms ?? 0} ms`;
  }
}

/** `skiff power`'s block: one `label  value` line per aspect, lists indented below. */
export function describePower(container: ContainerId, power: PowerInfo): string[] {
  const lines = [container, `  state          ${power.state} (sequence ${power.sequence})`];
  const list = (label: string, items: string[]): void => {
    lines.push(`  ${label.padEnd(15)}${items.length === 0 ? "none" : ""}`.trimEnd());
    items.forEach((item) => lines.push(`    ${item}`));
  };
  list(
    "wake locks",
    power.locks.map(
      (l) =>
        `${l.name} (held by ${l.holder}${l.expires_at_ms === undefined ? "" : `, expires ${isoTime(l.expires_at_ms)}`})`,
    ),
  );
  list(
    "wake sources",
    power.sources.map((s) => `${s.name}: ${describeWakeSource(s.source)}`),
  );
  list(
    "counters",
    Object.entries(power.counters).map(([channel, count]) => `${channel}: ${count}`),
  );
  const last = power.last_suspend;
  const described =
    last === null ? "never" : `${formatSeconds(last.suspend_time)}, woken by: ${last.resume_reason}`;
  lines.push(`  last suspend   ${described}`);
  return lines;
}

// ---------------------------------------------------------------------------------------------
// Commands.

const suspend: Command = {
  name: "suspend",
  summary: "Suspend a container until a wake source fires (or --max-sleep passes)",
  usage: "skiff suspend CONTAINER [--max-sleep DURATION]",
  options: { "max-sleep": { type: "string" } },
  async run(ctx, parsed) {
    const args = parseSuspendArguments(parsed);
    // No request deadline: the answer comes when the container wakes up.
    return onContainer(
      ctx,
      args.name,
      async (client, container) => {
        const { suspendTime, resumeReason } = await client.suspend(
          container,
          args.maxSleepMs === undefined ? {} : { maxSleepMs: args.maxSleepMs },
        );
        return formatSuspend(suspendTime, resumeReason);
      },
      { timeout: 0 },
    );
  },
};

const wakelock: Command = {
  name: "wakelock",
  summary: "Acquire or release a wake lock (a held lock makes suspend fail)",
  usage: "skiff wakelock acquire|release CONTAINER LOCK [--timeout DURATION]",
  // Its own --timeout: the lock's lifetime, not the request deadline.
  options: { timeout: { type: "string", short: "t" } },
  async run(ctx, parsed) {
    const args = parseWakeLockArguments(parsed);
    return onContainer(ctx, args.name, async (client, container) => {
      if (args.action === "acquire") {
        const options = args.timeoutMs === undefined ? {} : { timeoutMs: args.timeoutMs };
        await client.acquireWakeLock(container, args.lock, options);
      } else {
        await client.releaseWakeLock(container, args.lock);
      }
      return `${args.action === "acquire" ? "acquired" : "released"} wake lock ${args.lock} of ${container}`;
    });
  },
};

const wakesource: Command = {
  name: "wakesource",
  summary: "Add or remove what wakes a suspended container",
  usage:
    "skiff wakesource add CONTAINER SOURCE (--path P | --timer-after DURATION | --timer-at EPOCH_MS | --proxy CHANNEL) | remove CONTAINER SOURCE",
  options: {
    path: { type: "string" },
    "timer-after": { type: "string" },
    "timer-at": { type: "string" },
    proxy: { type: "string" },
  },
  async run(ctx, parsed) {
    const args = parseWakeSourceArguments(parsed);
    return onContainer(ctx, args.name, async (client, container) => {
      if (args.action === "remove") {
        await client.removeWakeSource(container, args.sourceName);
        return `removed wake source ${args.sourceName} from ${container}`;
      }
      await client.addWakeSource(container, args.sourceName, args.source);
      return `added wake source ${args.sourceName} (${describeWakeSource(args.source)}) to ${container}`;
    });
  },
};

const proxy: Command = {
  name: "proxy",
  summary: "Open a proxy wake channel: the daemon listens and forwards into the container",
  usage: "skiff proxy CONTAINER CHANNEL --listen URL --target URL [--framing newline|length|datagram]",
  options: { listen: { type: "string" }, target: { type: "string" }, framing: { type: "string" } },
  async run(ctx, parsed) {
    const args = parseProxyArguments(parsed);
    return onContainer(ctx, args.name, async (client, container) => {
      await client.proxyWakeChannel(container, args.channel, args.listen, args.target, args.framing);
      return `proxy ${args.channel} of ${container}: ${args.listen} -> ${args.target}`;
    });
  },
};

const power: Command = {
  name: "power",
  summary: "Show a container's power state, wake locks, wake sources, counters and last suspend",
  usage: "skiff power CONTAINER",
  run: (ctx, parsed) =>
    onContainer(ctx, parseContainerArgument(parsed, "power"), async (client, container) =>
      describePower(container, await client.power(container)),
    ),
};

export const powerCommands: Command[] = [
  containerVerb("pause", "Freeze a container (pausing a paused one succeeds)", "paused"),
  containerVerb("resume", "Thaw a paused container", "resumed"),
  suspend,
  wakelock,
  wakesource,
  proxy,
  power,
];
