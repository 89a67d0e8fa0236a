import { allCommands } from "../../../src/cli/registry.js";
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { UsageError, parseCommandArguments, type ParsedCommand } from "../../../src/cli/command.js";
import {
  formatBytes,
  formatUptime,
  parseEnvironment,
  parseKillArguments,
  parseLogsArguments,
  parseSignal,
  parseStartArguments,
  startEnvironment,
  parseStopArguments,
  psRow,
} from "../../../src/cli/commands/containers.js";
import { runCli } from "../../../src/cli/main.js";
import { describeNotification } from "../../../src/cli/output.js";
import { describeExitStatus, signalName } from "../../../src/protocol/exit-status.js";
import type { ContainerData } from "../../../src/protocol/messages.js";

const COMMANDS = await allCommands();
const findCommand = (name: string) => COMMANDS.find((c) => c.name === name || c.aliases?.includes(name));

/** Parses a command's arguments the way main.ts does. */
function parse(command: string, args: string[]): ParsedCommand {
  const found = findCommand(command);
  assert.ok(found, `no command ${command}`);
  return parseCommandArguments(found, args);
}

describe("signals", () => {
  it("takes numbers and names with or without SIG, in any case", () => {
    assert.equal(parseSignal("9"), 9);
    assert.equal(parseSignal("64"), 64);
    assert.equal(parseSignal("TERM"), 15);
    assert.equal(parseSignal("SIGKILL"), 9);
    assert.equal(parseSignal("sigusr1"), 10);
    assert.equal(parseSignal("hup"), 1);
  });

  it("rejects unknown names and numbers outside 1-64", () => {
    for (const bad of ["0", "65", "FOO", "SIG", "", "9x", "1.5"]) {
      assert.throws(() => parseSignal(bad), UsageError, bad);
    }
  });

  it("names signals, and exit statuses with them", () => {
    assert.equal(signalName(9), "SIGKILL");
    assert.equal(signalName(40), undefined);
    const cli = { signalNames: true };
    assert.equal(describeExitStatus({ type: "exit", code: 0 }, cli), "exit code 0");
    assert.equal(describeExitStatus({ type: "signalled", signal: 9 }, cli), "signal 9 (SIGKILL)");
    assert.equal(describeExitStatus({ type: "signalled", signal: 40 }, cli), "signal 40");
    assert.equal(
      describeExitStatus({ type: "signalled", signal: 9, reason: "shutdown", oom: true }, cli),
      "signal 9 (SIGKILL), reason shutdown, oom",
    );
    // The daemon's log lines: no names; notifications put the daemon's view in parentheses.
    assert.equal(describeExitStatus({ type: "signalled", signal: 9, oom: true }), "signal 9, oom");
    assert.equal(
      describeExitStatus({ type: "exit", code: 3, reason: "error" }, { details: "parenthesised" }),
      "exit code 3 (reason error)",
    );
  });
});

describe("start arguments", () => {
  it("splits init and its arguments after --, with -e before it", () => {
    assert.deepEqual(
      parseStartArguments(
        parse("start", ["web", "-e", "A=1", "--env", "B=x=y", "--", "/bin/sh", "-c", "echo -e hi"]),
      ),
      {
        name: "web",
        init: "/bin/sh",
        arguments: ["-c", "echo -e hi"],
        environment: { A: "1", B: "x=y" },
        debugHold: false,
      },
    );
  });

  it("has no overrides without --", () => {
    assert.deepEqual(parseStartArguments(parse("start", ["web:1.0.0"])), {
      name: "web:1.0.0",
      init: undefined,
      arguments: [],
      environment: {},
      debugHold: false,
    });
  });

  it("--debug-hold sends the manifest's env (or the -e env) with SKIFF_DEBUG_HOLD=1", () => {
    const hold = parseStartArguments(parse("start", ["web", "--debug-hold"]));
    assert.equal(hold.debugHold, true);
    assert.deepEqual(startEnvironment(hold, { env: { PORT: "80" } }), { PORT: "80", SKIFF_DEBUG_HOLD: "1" });
    assert.deepEqual(startEnvironment(hold, {}), { SKIFF_DEBUG_HOLD: "1" });
    const withEnv = parseStartArguments(parse("start", ["web", "--debug-hold", "-e", "A=1"]));
    assert.deepEqual(startEnvironment(withEnv, { env: { PORT: "80" } }), { A: "1", SKIFF_DEBUG_HOLD: "1" });
    const plain = parseStartArguments(parse("start", ["web", "-e", "A=1"]));
    assert.deepEqual(startEnvironment(plain, { env: { PORT: "80" } }), { A: "1" });
    assert.throws(() => parseStartArguments(parse("start", ["web", "-e", "SKIFF_DEBUG_HOLD=1"])), UsageError);
  });

  it("treats -e after -- as an argument of init", () => {
    const args = parseStartArguments(parse("start", ["web", "--", "/bin/env", "-e", "A=1"]));
    assert.deepEqual(args.arguments, ["-e", "A=1"]);
    assert.deepEqual(args.environment, {});
  });

  it("needs a container", () => {
    assert.throws(() => parseStartArguments(parse("start", ["-e", "A=1"])), UsageError);
  });

  it("reads -e KEY=VALUE: empty values allowed, empty keys and repeats not", () => {
    assert.deepEqual(parseEnvironment(["A=", "B==", "C=d e"]), { A: "", B: "=", C: "d e" });
    assert.throws(() => parseEnvironment(["=x"]), UsageError);
    assert.throws(() => parseEnvironment(["A"]), UsageError);
    assert.throws(() => parseEnvironment(["A=1", "A=2"]), /given twice/);
  });
});

describe("kill, stop and logs arguments", () => {
  it("kill defaults to SIGTERM", () => {
    assert.deepEqual(parseKillArguments(parse("kill", ["web"])), { name: "web", signal: 15 });
    assert.deepEqual(parseKillArguments(parse("kill", ["web", "KILL"])), { name: "web", signal: 9 });
    assert.throws(() => parseKillArguments(parse("kill", [])), UsageError);
    assert.throws(() => parseKillArguments(parse("kill", ["web", "9", "x"])), UsageError);
  });

  it("stop takes -t as whole seconds", () => {
    assert.deepEqual(parseStopArguments(parse("stop", ["web", "-t", "30"])), {
      name: "web",
      timeoutSeconds: 30,
    });
    assert.deepEqual(parseStopArguments(parse("stop", ["web"])), { name: "web", timeoutSeconds: undefined });
    assert.throws(() => parseStopArguments(parse("stop", ["web", "-t", "1.5"])), UsageError);
    assert.throws(() => parseStopArguments(parse("stop", ["a", "b"])), UsageError);
  });

  it("logs takes -f and -n", () => {
    assert.deepEqual(parseLogsArguments(parse("logs", ["-f", "-n", "20", "web"])), {
      name: "web",
      follow: true,
      lines: 20,
    });
    assert.deepEqual(parseLogsArguments(parse("logs", ["web"])), {
      name: "web",
      follow: false,
      lines: undefined,
    });
    assert.throws(() => parseLogsArguments(parse("logs", ["-n", "x", "web"])), UsageError);
  });

  it("reports usage errors with exit code 2 before connecting", async () => {
    const err: string[] = [];
    const io = { out: () => undefined, err: (l: string) => err.push(l) };
    assert.equal(await runCli(["-u", "unix:///nonexistent.sock", "kill", "web", "BOGUS"], io), 2);
    assert.equal(await runCli(["-u", "unix:///nonexistent.sock", "stop", "web", "-t", "x"], io), 2);
    assert.equal(await runCli(["-u", "unix:///nonexistent.sock", "start", "web", "-e", "novalue"], io), 2);
    assert.match(err.join("\n"), /unknown signal BOGUS/);
  });
});

describe("ps rows", () => {
  const data = (process: ContainerData["process"]): ContainerData => ({
    manifest: {},
    repository: "default",
    mounted: true,
    process,
  });

  it("shows running containers with uptime, starter and memory", () => {
    const running = data({
      pid: 42,
      uptime: 3_723 * 1e9,
      statistics: { memory: { usage: 5 * 1024 * 1024 } },
      started_by: "autostart",
    });
    assert.deepEqual(psRow("web:1.2.3", running), ["web", "1.2.3", "42", "1h02m", "autostart", "5.0 MiB"]);
    const bare = data({ pid: 7, uptime: 0, statistics: {} });
    assert.deepEqual(psRow("a.b:0.1.0-rc.1", bare), ["a.b", "0.1.0-rc.1", "7", "0s", "-", "-"]);
    assert.equal(psRow("web:1.2.3", data(null)), undefined);
  });

  it("formats uptimes and sizes", () => {
    assert.equal(formatUptime(59.9e9), "59s");
    assert.equal(formatUptime(125e9), "2m05s");
    assert.equal(formatUptime(90_000e9), "1d01h");
    assert.equal(formatBytes(812), "812 B");
    assert.equal(formatBytes(4096), "4.0 KiB");
    assert.equal(formatBytes(3 * 2 ** 30), "3.0 GiB");
  });

  it("describes a restarted notification", () => {
    assert.match(
      describeNotification({ type: "restarted", container: "web:1.0.0" }),
      /^restarted +web:1\.0\.0/,
    );
  });
});
