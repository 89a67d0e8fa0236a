import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseArgs } from "node:util";
import { UsageError, type ParsedCommand } from "../../../src/cli/command.js";
import { describeHealth, executorCommands, healthExitCode } from "../../../src/cli/commands/executor.js";
import {
  describePower,
  formatSuspend,
  parseContainerArgument,
  parseDurationOption,
  parseProxyArguments,
  parseSuspendArguments,
  parseWakeLockArguments,
  parseWakeSourceArguments,
  powerCommands,
} from "../../../src/cli/commands/power.js";
import { findCommand } from "../../../src/cli/registry.js";
import type { PowerInfo } from "../../../src/protocol/messages.js";

/** Parses a command's arguments the way main.ts does (its global options plus the command's). */
function parse(command: string, args: string[]): ParsedCommand {
  const options = [...powerCommands, ...executorCommands].find((c) => c.name === command)?.options ?? {};
  return parseArgs({
    args,
    options: {
      url: { type: "string", short: "u" },
      json: { type: "boolean" },
      timeout: { type: "string", short: "t" },
      help: { type: "boolean", short: "h" },
      ...options,
    },
    allowPositionals: true,
    strict: true,
  });
}

describe("power command arguments", () => {
  it("registers every power and executor command", () => {
    for (const name of [
      "pause",
      "resume",
      "suspend",
      "wakelock",
      "wakesource",
      "proxy",
      "power",
      "prepare",
      "health",
    ]) {
      assert.equal(findCommand(name)?.name, name);
    }
  });

  it("takes exactly one container for pause, resume, power and prepare", () => {
    assert.equal(parseContainerArgument(parse("pause", ["web"]), "pause"), "web");
    assert.throws(() => parseContainerArgument(parse("pause", []), "pause"), UsageError);
    assert.throws(
      () => parseContainerArgument(parse("power", ["a", "b"]), "power"),
      /power takes one container/,
    );
  });

  it("reads durations with units or as bare seconds", () => {
    assert.equal(parseDurationOption("500ms", "--x"), 500);
    assert.equal(parseDurationOption("1m30s", "--x"), 90_000);
    assert.equal(parseDurationOption("5", "--x"), 5000);
    assert.equal(parseDurationOption(undefined, "--x"), undefined);
    assert.throws(() => parseDurationOption("1.5s", "--max-sleep"), /--max-sleep: invalid duration/);
  });

  it("parses suspend with and without --max-sleep", () => {
    assert.deepEqual(parseSuspendArguments(parse("suspend", ["web"])), {
      name: "web",
      maxSleepMs: undefined,
    });
    assert.deepEqual(parseSuspendArguments(parse("suspend", ["web", "--max-sleep", "2s"])), {
      name: "web",
      maxSleepMs: 2000,
    });
    assert.throws(() => parseSuspendArguments(parse("suspend", ["web", "--max-sleep", "soon"])), UsageError);
  });

  it("parses wakelock acquire (with a lifetime) and release", () => {
    assert.deepEqual(parseWakeLockArguments(parse("wakelock", ["acquire", "web", "ui", "--timeout", "30"])), {
      action: "acquire",
      name: "web",
      lock: "ui",
      timeoutMs: 30_000,
    });
    assert.deepEqual(parseWakeLockArguments(parse("wakelock", ["release", "web:1.0.0", "ui"])), {
      action: "release",
      name: "web:1.0.0",
      lock: "ui",
    });
    assert.throws(() => parseWakeLockArguments(parse("wakelock", ["grab", "web", "ui"])), UsageError);
    assert.throws(() => parseWakeLockArguments(parse("wakelock", ["acquire", "web"])), UsageError);
    assert.throws(
      () => parseWakeLockArguments(parse("wakelock", ["release", "web", "ui", "--timeout", "5"])),
      /acquire only/,
    );
  });

  it("parses wakesource add with exactly one source, and remove", () => {
    const add = (...flags: string[]) =>
      parseWakeSourceArguments(parse("wakesource", ["add", "web", "s", ...flags]));
    const sourceOf = (...flags: string[]) => {
      const parsed = add(...flags);
      assert.equal(parsed.action, "add");
      return parsed.action === "add" ? parsed.source : undefined;
    };
    assert.deepEqual(sourceOf("--path", "/run/x.sock"), { type: "path", path: "/run/x.sock" });
    assert.deepEqual(sourceOf("--timer-after", "1m"), { type: "timer", after_ms: 60_000 });
    assert.deepEqual(sourceOf("--timer-at", "1764000000000"), { type: "timer", at_ms: 1764000000000 });
    assert.deepEqual(sourceOf("--proxy", "http"), { type: "proxy", channel: "http" });
    assert.throws(() => add(), /exactly one/);
    assert.throws(() => add("--path", "/a", "--proxy", "http"), /exactly one/);
    assert.throws(() => add("--timer-at", "tomorrow"), /epoch milliseconds/);
    assert.throws(() => add("--path", ""), /empty/);
    assert.deepEqual(parseWakeSourceArguments(parse("wakesource", ["remove", "web", "s"])), {
      action: "remove",
      name: "web",
      sourceName: "s",
    });
    assert.throws(
      () => parseWakeSourceArguments(parse("wakesource", ["remove", "web", "s", "--proxy", "http"])),
      /remove takes no --proxy/,
    );
  });

  it("parses proxy with listen, target and framing", () => {
    const args = ["web", "http", "--listen", "tcp://0.0.0.0:8080", "--target", "tcp://127.0.0.1:80"];
    assert.deepEqual(parseProxyArguments(parse("proxy", args)), {
      name: "web",
      channel: "http",
      listen: "tcp://0.0.0.0:8080",
      target: "tcp://127.0.0.1:80",
      framing: undefined,
    });
    assert.equal(parseProxyArguments(parse("proxy", [...args, "--framing", "datagram"])).framing, "datagram");
    assert.throws(
      () => parseProxyArguments(parse("proxy", [...args, "--framing", "xml"])),
      /--framing takes/,
    );
    assert.throws(() => parseProxyArguments(parse("proxy", ["web", "http", "--listen", "x"])), /--target/);
    assert.throws(() => parseProxyArguments(parse("proxy", ["web"])), UsageError);
  });
});

describe("power output", () => {
  it("prints a suspend as seconds and the wake reason", () => {
    assert.equal(formatSuspend(1_234_000_000, "proxy-http"), "suspended 1.234 s, woken by: proxy-http");
    assert.equal(formatSuspend(5_000_000_000, "max_sleep"), "suspended 5.000 s, woken by: max_sleep");
  });

  it("describes power state, locks, sources, counters and the last suspend", () => {
    const power: PowerInfo = {
      state: "awake",
      sequence: 4,
      locks: [{ name: "ui", holder: "extern:0.0.0", expires_at_ms: 0 }],
      sources: [
        { name: "http", source: { type: "proxy", channel: "http" } },
        { name: "tick", source: { type: "timer", after_ms: 5000 } },
      ],
      counters: { http: 3 },
      last_suspend: { suspend_time: 1_500_000_000, resume_reason: "http" },
    };
    assert.deepEqual(describePower("web:1.0.0", power), [
      "web:1.0.0",
      "  state          awake (sequence 4)",
      "  wake locks",
      "    ui (held by extern:0.0.0, expires 1970-01-01T00:00:00.000Z)",
      "  wake sources",
      "    http: proxy channel http",
      "    tick: timer after 5000 ms",
      "  counters",
      "    http: 3",
      "  last suspend   1.500 s, woken by: http",
    ]);
    const idle = describePower("web:1.0.0", {
      ...power,
      locks: [],
      sources: [],
      counters: {},
      last_suspend: null,
    });
    assert.deepEqual(idle.slice(2), [
      "  wake locks     none",
      "  wake sources   none",
      "  counters       none",
      "  last suspend   never",
    ]);
  });

  it("prints health and exits 1 when degraded", () => {
    assert.deepEqual(describeHealth({ status: "ok", problems: [] }), ["ok"]);
    const degraded = { status: "degraded" as const, problems: ["OCI runtime /x: not found"] };
    assert.deepEqual(describeHealth(degraded), ["degraded", "  - OCI runtime /x: not found"]);
    assert.equal(healthExitCode({ status: "ok", problems: [] }), 0);
    assert.equal(healthExitCode(degraded), 1);
  });
});
