import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { RuntimeError } from "../../../src/client/index.js";
import { ContainerHarness } from "../../helpers/containers.js";
import { nameOf } from "../../../src/protocol/container.js";

describe("container lifecycle against real runc", () => {
  let h: ContainerHarness;
  let sh: string;
  let sleeper: string;
  let stubborn: string;
  before(async () => {
    h = await ContainerHarness.create();
    sh = await h.add(h.name("sh"), "/bin/sh", ["-c", "exit 0"]);
    sleeper = await h.add(h.name("sleeper"), "/bin/sleep", ["1000"]);
    stubborn = await h.add(
      h.name("stubborn"),
      "/bin/sh",
      ["-c", "trap '' TERM; echo ready; while true; do sleep 1; done"],
      "stop_timeout: 300ms\n",
    );
    await h.startDaemon();
  });
  after(() => h.close());

  it("reports exit codes 0, 1, 10, 127, 128, 255 exactly", async () => {
    for (const code of [0, 1, 10, 127, 128, 255]) {
      const from = h.notifications.length;
      await h.client.start(sh, { init: "/bin/sh", arguments: ["-c", `exit ${code}`] });
      assert.deepEqual(await h.waitForExit(sh, from), { type: "exit", code, reason: "shutdown" });
    }
  });

  it("reports a crash and deaths by SIGKILL and SIGTERM as signals, not codes", async () => {
    let from = h.notifications.length;
    await h.client.start(sh, { init: "/bin/sh", arguments: ["-c", "kill -SEGV $$"] });
    assert.deepEqual(await h.waitForExit(sh, from), { type: "signalled", signal: 11, reason: "shutdown" });
    for (const signal of [9, 15]) {
      from = h.notifications.length;
      await h.client.start(sleeper);
      await h.client.kill(sleeper, signal);
      assert.deepEqual(await h.waitForExit(sleeper, from), { type: "signalled", signal, reason: "shutdown" });
    }
  });

  it("started notification, inspect shows the process, a second start is start_container_started", async () => {
    const from = h.notifications.length;
    await h.client.start(sleeper);
    await h.waitFor((n) => n.type === "started" && n.container === sleeper, 5000, from);
    const data = await h.client.inspect(sleeper);
    assert.equal(data.state, "running");
    assert.ok(data.process && data.process.pid > 1);
    assert.equal(data.process.started_by, "request");
    await assert.rejects(
      h.client.start(sleeper),
      (e: unknown) => e instanceof RuntimeError && e.variant === "start_container_started",
    );
    const status = await h.client.stop(sleeper);
    assert.deepEqual(status, { type: "signalled", signal: 15, reason: "shutdown" });
    assert.equal((await h.client.inspect(sleeper)).process, null);
  });

  it("stop escalates to SIGKILL for a process that ignores SIGTERM", async () => {
    await h.client.start(stubborn);
    await h.waitForLog(stubborn, "stdout ready");
    const status = await h.client.stop(stubborn);
    assert.deepEqual(status, { type: "signalled", signal: 9, reason: "shutdown" });
  });

  it("kill and stop of a container that is not running are stop_container_not_started", async () => {
    await assert.rejects(
      h.client.kill(sleeper, 9),
      (e: unknown) => e instanceof RuntimeError && e.variant === "stop_container_not_started",
    );
    await assert.rejects(
      h.client.stop(sleeper),
      (e: unknown) => e instanceof RuntimeError && e.variant === "stop_container_not_started",
    );
  });

  it("reserved environment keys are refused", async () => {
    await assert.rejects(
      h.client.start(sleeper, { environment: { NORTHSTAR_NAME: "x" } }),
      (e: unknown) => e instanceof RuntimeError && e.variant === "invalid_arguments",
    );
  });

  it("reboot(RESTART) from inside restarts with a new init pid; poweroff ends it as shutdown", async () => {
    // reboot(2) in a PID namespace needs CAP_SYS_BOOT.
    const caps = "capabilities: [CAP_SYS_BOOT]\n";
    const rebooter = await h.add(h.name("rebooter"), "/bin/sh", ["-c", "sleep 0.2; reboot -f"], caps);
    const poweroff = await h.add(h.name("poweroff"), "/bin/sh", ["-c", "sleep 0.2; poweroff -f"], caps);
    // The daemon finds new packages at start only: install them over the console.
    for (const id of [rebooter, poweroff]) {
      const name = nameOf(id);
      const { readFile } = await import("node:fs/promises");
      const data = await readFile(`${h.dir}/repo/${name}-1.0.0.npk`);
      await h.client.uninstall(id).catch(() => undefined);
      await h.client.install("default", data.length, data).catch(() => undefined);
    }
    let from = h.notifications.length;
    await h.client.start(rebooter);
    const firstPid = (await h.client.inspect(rebooter)).process!.pid;
    await h.waitFor((n) => n.type === "restarted" && n.container === rebooter, 10_000, from);
    const secondPid = (await h.client.inspect(rebooter)).process?.pid;
    assert.ok(secondPid !== undefined && secondPid !== firstPid, "a new init pid");
    const exits = h.exitsOf(rebooter);
    assert.ok(
      exits.every((s) => s.reason !== "shutdown"),
      `no exit of reason shutdown: ${JSON.stringify(exits)}`,
    );
    await h.client.kill(rebooter, 9);
    await h.waitFor(
      (n) => n.type === "exit" && n.container === rebooter && n.status.type === "signalled",
      10_000,
      from,
    );

    from = h.notifications.length;
    await h.client.start(poweroff);
    const status = await h.waitForExit(poweroff, from);
    assert.equal(status.reason, "shutdown");
  });

  it("stdout and stderr land in the log in order", async () => {
    const from = h.notifications.length;
    // Two pipes have no common order for writes in the same instant; lines apart in time keep theirs.
    const script = "echo one; sleep 0.05; echo two >&2; sleep 0.05; echo three; sleep 0.05; echo four >&2";
    await h.client.start(sh, { init: "/bin/sh", arguments: ["-c", script] });
    await h.waitForExit(sh, from);
    const lines = (await h.logLines(sh)).filter((l) => /(one|two|three|four)$/.test(l));
    assert.deepEqual(lines.slice(-4), ["stdout one", "stderr two", "stdout three", "stderr four"]);
  });
});
