import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, before, describe, it } from "node:test";
import { UsageError, parseCommandArguments, type ParsedCommand } from "../../../src/cli/command.js";
import { describeHealth, healthExitCode } from "../../../src/cli/commands/executor.js";
import {
  describePower,
  describeWakeSource,
  formatSuspend,
  parseDurationOption,
  parseProxyArguments,
  parseSuspendArguments,
  parseWakeLockArguments,
  parseWakeSourceArguments,
} from "../../../src/cli/commands/power.js";
import { runCli } from "../../../src/cli/main.js";
import { allCommands } from "../../../src/cli/registry.js";
import { decodeMessage, encodeMessage } from "../../../src/protocol/codec.js";
import type { PowerInfo, Request, Response } from "../../../src/protocol/messages.js";
import { parseContainerArgument } from "../../../src/cli/commands/session.js";

const COMMANDS = await allCommands();
const findCommand = (name: string) => COMMANDS.find((c) => c.name === name || c.aliases?.includes(name));

/** Parses a command's arguments the way main.ts does. */
function parse(command: string, args: string[]): ParsedCommand {
  const found = findCommand(command);
  assert.ok(found, `no command ${command}`);
  return parseCommandArguments(found, args);
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
  it("describes wake sources, also timers beyond what Date can show", () => {
    assert.equal(describeWakeSource({ type: "timer", at_ms: 0 }), "timer at 1970-01-01T00:00:00.000Z");
    assert.equal(
      describeWakeSource({ type: "timer", at_ms: 9e15 }),
      "timer at 9000000000000000 ms after the epoch",
    );
    assert.equal(describeWakeSource({ type: "path", path: "/run/a.fifo" }), "path /run/a.fifo");
  });

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

/**
 * A scripted console on a Unix socket in a temp directory: acknowledges the handshake, records
 * each request and answers it with `answer`. Checks the CLI, client and codec together.
 */
describe("power and executor commands against a scripted console", () => {
  let dir: string;
  let server: Server;
  let url: string;
  const requests: Request[] = [];
  let answer: (request: Request) => Response = () => ({
    type: "error",
    error: { type: "unsupported", request: "x" },
  });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "skiff-power-cli-"));
    const path = join(dir, "console.sock");
    url = `unix://${path}`;
    server = createServer((socket) => {
      let greeted = false;
      createInterface({ input: socket }).on("line", (line) => {
        const message = decodeMessage(line);
        if (!greeted) {
          greeted = true;
          socket.write(encodeMessage({ type: "connect_ack" }));
        } else if (message.type === "request") {
          requests.push(message.request);
          const response: Response =
            message.request.type === "list"
              ? { type: "list", containers: ["web:1.0.0"] }
              : answer(message.request);
          socket.write(encodeMessage({ type: "response", response }));
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(path, resolve));
  });

  after(async () => {
    await new Promise((resolve) => server.close(resolve));
    await rm(dir, { recursive: true, force: true });
  });

  async function cli(...args: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
    const out: string[] = [];
    const err: string[] = [];
    requests.length = 0;
    const code = await runCli(["-u", url, ...args], { out: (l) => out.push(l), err: (l) => err.push(l) });
    return { code, out, err };
  }

  it("suspends with max_sleep_ms on the wire and prints the time in seconds and the reason", async () => {
    answer = () => ({
      type: "suspend",
      result: {
        type: "ok",
        container: "web:1.0.0",
        suspend_time: 1_234_000_000,
        resume_reason: "proxy-http",
      },
    });
    const { code, out } = await cli("suspend", "web", "--max-sleep", "2s");
    assert.equal(code, 0);
    assert.deepEqual(out, ["suspended 1.234 s, woken by: proxy-http"]);
    assert.deepEqual(requests, [
      { type: "list" },
      { type: "suspend", container: "web:1.0.0", max_sleep_ms: 2000 },
    ]);
  });

  it("reports wake_locks_exist as a runtime error", async () => {
    answer = () => ({
      type: "suspend",
      result: {
        type: "error",
        container: "web:1.0.0",
        error: { type: "wake_locks_exist", container: "web:1.0.0" },
      },
    });
    const { code, err } = await cli("suspend", "web:1.0.0");
    assert.equal(code, 1);
    assert.deepEqual(err, ["skiff suspend: wake locks exist (container: web:1.0.0)"]);
  });

  it("sends wake sources, locks and proxy channels in their wire shapes", async () => {
    answer = (r) => ({
      type:
        r.type === "add_wake_source" ? "wake_source" : r.type === "wake_lock_acquire" ? "wake_lock" : "proxy",
      result: { type: "ok", container: "web:1.0.0" },
    });
    assert.equal((await cli("wakesource", "add", "web:1.0.0", "tick", "--timer-after", "5s")).code, 0);
    assert.deepEqual(requests, [
      {
        type: "add_wake_source",
        container: "web:1.0.0",
        name: "tick",
        source: { type: "timer", after_ms: 5000 },
      },
    ]);
    assert.equal((await cli("wakelock", "acquire", "web:1.0.0", "ui", "--timeout", "30")).code, 0);
    assert.deepEqual(requests, [
      { type: "wake_lock_acquire", container: "web:1.0.0", name: "ui", timeout_ms: 30_000 },
    ]);
    const proxy = [
      "proxy",
      "web:1.0.0",
      "http",
      "--listen",
      "tcp://0.0.0.0:8080",
      "--target",
      "tcp://127.0.0.1:80",
    ];
    assert.equal((await cli(...proxy, "--framing", "length")).code, 0);
    assert.deepEqual(requests, [
      {
        type: "proxy_wake_channel",
        container: "web:1.0.0",
        name: "http",
        listen: "tcp://0.0.0.0:8080",
        target: "tcp://127.0.0.1:80",
        framing: "length",
      },
    ]);
  });

  it("prints power as a block, or the wire line with --json", async () => {
    const power: PowerInfo = {
      state: "asleep",
      sequence: 1,
      locks: [],
      sources: [],
      counters: {},
      last_suspend: null,
    };
    answer = () => ({ type: "power", result: { type: "ok", container: "web:1.0.0", power } });
    const block = await cli("power", "web:1.0.0");
    assert.deepEqual(block.out.slice(0, 2), ["web:1.0.0", "  state          asleep (sequence 1)"]);
    const json = await cli("--json", "power", "web:1.0.0");
    assert.deepEqual(JSON.parse(json.out[0]!), {
      response: { power: { ok: { container: "web:1.0.0", power } } },
    });
  });

  it("exits 1 and prints the problems when the executor is degraded", async () => {
    answer = () => ({
      type: "health",
      health: { status: "degraded", problems: ["OCI runtime /x/runc: not found"] },
    });
    const degraded = await cli("health");
    assert.equal(degraded.code, 1);
    assert.deepEqual(degraded.out, ["degraded", "  - OCI runtime /x/runc: not found"]);
    answer = () => ({ type: "health", health: { status: "ok", problems: [] } });
    assert.deepEqual(await cli("health"), { code: 0, out: ["ok"], err: [] });
  });
});
