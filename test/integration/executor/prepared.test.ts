import assert from "node:assert/strict";
import { copyFile, readFile, rename } from "node:fs/promises";
import { after, describe, it } from "node:test";
import { connect, RuntimeError, type Client } from "../../../src/client/index.js";
import { ContainerHarness } from "../../helpers/containers.js";
import { waitFor as waitForCondition } from "../../helpers/wait.js";
import { nameOf } from "../../../src/protocol/container.js";

const settle = (p: Promise<unknown>): Promise<string> =>
  p.then(
    () => "ok",
    (e: unknown) => (e instanceof RuntimeError ? e.variant : `other: ${String(e)}`),
  );

describe("executor: prepared containers, race-safe operations, a loud dead executor", () => {
  const harnesses: ContainerHarness[] = [];
  after(async () => {
    for (const h of harnesses) await h.close();
  });

  it("prepare then start runs the manifest's process; with prepare: true the next one is prepared after exit", async () => {
    const h = await ContainerHarness.create();
    harnesses.push(h);
    const id = await h.add(h.name("quick"), "/bin/sh", ["-c", "echo prepared-run"], "prepare: true\n");
    await h.startDaemon();
    // prepare: true prepares it at daemon start.
    await waitForCondition(async () => (await h.client.inspect(id)).state === "prepared", {
      timeoutMs: 20_000,
      what: "the instance to be prepared",
    }).catch(() => undefined);
    assert.equal((await h.client.inspect(id)).state, "prepared");
    assert.deepEqual(await h.client.list(), [id]);
    const from = h.notifications.length;
    await h.client.start(id);
    assert.deepEqual(await h.waitForExit(id, from), { type: "exit", code: 0, reason: "shutdown" });
    assert.ok((await h.logLines(id)).includes("stdout prepared-run"));
    await waitForCondition(async () => (await h.client.inspect(id)).state === "prepared", {
      timeoutMs: 20_000,
      what: "the next instance to be prepared",
    }).catch(() => undefined);
    assert.equal((await h.client.inspect(id)).state, "prepared", "the next instance is prepared");
  });

  it("starts right after exits use the instance being prepared (prepare: true, 10 rounds)", async () => {
    const h = await ContainerHarness.create();
    harnesses.push(h);
    const id = await h.add(h.name("loop"), "/bin/true", [], "prepare: true\n");
    await h.startDaemon();
    for (let round = 0; round < 10; round++) {
      const from = h.notifications.length;
      await h.client.start(id);
      assert.deepEqual(await h.waitForExit(id, from), { type: "exit", code: 0, reason: "shutdown" });
    }
    assert.equal(h.exitsOf(id).length, 10);
  });

  it("a start right after the prepared instance ended is answered by a new instance (10 rounds)", async () => {
    const h = await ContainerHarness.create();
    harnesses.push(h);
    const id = await h.add(h.name("ended"), "/bin/sleep", ["1000"]);
    await h.startDaemon();
    // Every request gets its answer within a minute, or fails the test (not a hang).
    const client = await connect(h.url, { timeout: 60_000 });
    try {
      for (let round = 0; round < 10; round++) {
        await client.prepare(id);
        const pid = (await client.inspect(id)).process!.pid;
        process.kill(pid, "SIGKILL");
        // The state has taken the exit once it no longer shows the prepared instance; its
        // cleanup is what the start now meets.
        await waitForCondition(async () => (await client.inspect(id)).state !== "prepared", {
          timeoutMs: 20_000,
          what: "the state to take the prepared instance's exit",
          intervalMs: 1,
        }).catch(() => undefined);
        assert.notEqual((await client.inspect(id)).state, "prepared", `round ${round}`);
        await client.start(id);
        assert.equal((await client.inspect(id)).state, "running", `round ${round}`);
        await client.stop(id);
      }
      assert.equal(h.exitsOf(id).length, 10, "the ended prepared instances report no exit");
    } finally {
      client.close();
    }
  });

  it("a start with overrides on a prepared container starts cold and runs the override", async () => {
    const h = await ContainerHarness.create();
    harnesses.push(h);
    const id = await h.add(h.name("over"), "/bin/sh", ["-c", "echo manifest"]);
    await h.startDaemon();
    await h.client.prepare(id);
    assert.equal((await h.client.inspect(id)).state, "prepared");
    const from = h.notifications.length;
    await h.client.start(id, { init: "/bin/sh", arguments: ["-c", "echo override"] });
    await h.waitForExit(id, from);
    const lines = await h.logLines(id);
    assert.ok(lines.includes("stdout override"));
    assert.ok(!lines.includes("stdout manifest"));
    assert.equal(h.exitsOf(id).length, 1, "the discarded prepared instance reports no exit");
    assert.match(h.log, /discarding the prepared instance for a cold start/);
  });

  it("kill -9 of the daemon with one prepared and one running container: both re-adopted; the prepared one starts", async () => {
    const h = await ContainerHarness.create();
    harnesses.push(h);
    const prepared = await h.add(h.name("ready"), "/bin/sh", ["-c", "echo from-prepared; sleep 1000"]);
    const running = await h.add(h.name("busy"), "/bin/sleep", ["1000"]);
    await h.startDaemon();
    await h.client.prepare(prepared);
    await h.client.start(running);
    const pid = (await h.client.inspect(running)).process!.pid;
    await h.killDaemon();
    await h.startDaemon();
    assert.equal((await h.client.inspect(prepared)).state, "prepared");
    assert.equal((await h.client.inspect(running)).process?.pid, pid);
    await h.client.start(prepared);
    await h.waitForLog(prepared, "stdout from-prepared");
    await h.client.stop(prepared);
    await h.client.stop(running);
  });

  it("uninstall of a container with a prepared instance removes the instance, its monitor, mount and cgroup", async () => {
    const h = await ContainerHarness.create();
    harnesses.push(h);
    const id = await h.add(h.name("gone"), "/bin/sleep", ["1000"]);
    await h.startDaemon();
    await h.client.prepare(id);
    const name = nameOf(id);
    assert.ok((await readFile("/proc/self/mountinfo", "utf8")).includes(`${name}-1.0.0`));
    await h.client.uninstall(id);
    assert.deepEqual(await h.client.list(), []);
    assert.ok(!(await readFile("/proc/self/mountinfo", "utf8")).includes(`${name}-1.0.0`), "image unmounted");
    const { access } = await import("node:fs/promises");
    assert.equal(
      await access(`/sys/fs/cgroup/memory/${h.cgroup}/${name}`).then(
        () => true,
        () => false,
      ),
      false,
      "cgroup removed",
    );
    const monitors = (await import("node:child_process")).execFileSync("ps", ["-eo", "args"]).toString();
    assert.ok(!monitors.includes(`${h.dir}/state/log/containers/${name}`), "monitor gone");
    assert.equal(h.exitsOf(id).length, 0);
  });

  it("umount of a container with a prepared instance discards the instance and unmounts", async () => {
    const h = await ContainerHarness.create();
    harnesses.push(h);
    const id = await h.add(h.name("unmounted"), "/bin/sleep", ["1000"]);
    await h.startDaemon();
    await h.client.prepare(id);
    assert.deepEqual(await h.client.umount([id]), [{ type: "ok", container: id }]);
    const data = await h.client.inspect(id);
    assert.equal(data.state, "installed");
    assert.equal(data.mounted, false);
    assert.equal(h.exitsOf(id).length, 0, "a discarded prepared instance reports no exit");
    // It can be prepared and started again.
    await h.client.start(id);
    await h.client.stop(id);
  });

  it("10 concurrent suspends and kills against one container, 100 rounds: definite answers, one exit, kill wins", async () => {
    const h = await ContainerHarness.create();
    harnesses.push(h);
    const id = await h.add(h.name("race"), "/bin/sleep", ["1000"]);
    await h.startDaemon();
    const clients: Client[] = await Promise.all(
      Array.from({ length: 10 }, () => connect(h.url, { timeout: 20_000 })),
    );
    try {
      for (let round = 0; round < 100; round++) {
        await h.client.start(id);
        // The previous round's instance is cleaned up before this start completes: any second exit
        // of it would have been posted by now.
        assert.equal(
          h.exitsOf(id).length,
          round,
          `round ${round}: one exit per round\n${h.log.slice(-3000)}`,
        );
        await h.client.addWakeSource(id, "t", { type: "timer", after_ms: 60_000 });
        const from = h.notifications.length;
        const answers = await Promise.all(
          clients.map((c, i) => settle(i % 2 === 0 ? c.suspend(id) : c.kill(id, 9))),
        );
        await h.waitForExit(id, from);
        for (const a of answers)
          assert.ok(
            !a.startsWith("other"),
            `round ${round}: ${JSON.stringify(answers)}\n${h.log.slice(-3000)}`,
          );
        // Kills: the first applied one succeeds; the rest find it dead or dying. No wake source can
        // fire within the round, so no suspend can succeed: the kill wins over every one.
        assert.ok(
          answers.filter((_, i) => i % 2 === 1).includes("ok"),
          `round ${round}: ${JSON.stringify(answers)}`,
        );
        assert.ok(
          answers.filter((_, i) => i % 2 === 0).every((a) => a !== "ok"),
          `round ${round}: ${JSON.stringify(answers)}`,
        );
      }
      // One more start: it completes after the last round's cleanup.
      await h.client.start(id);
      assert.equal(h.exitsOf(id).length, 100, "one exit per round");
      await h.client.stop(id);
      assert.doesNotMatch(h.log, /unhandled promise rejection/);
    } finally {
      clients.forEach((c) => c.close());
    }
  });

  it("rename the runtime away: health says so, a start is refused at once, running containers go on; put it back: starts work", async () => {
    const h = await ContainerHarness.create();
    harnesses.push(h);
    const runtime = `${h.dir}/runc`;
    await copyFile("/usr/sbin/runc", runtime);
    const { chmod } = await import("node:fs/promises");
    await chmod(runtime, 0o755);
    const keep = await h.add(h.name("keep"), "/bin/sleep", ["1000"]);
    const next = await h.add(h.name("next"), "/bin/sh", ["-c", "echo fine"]);
    await h.startDaemon(`[runtime]\nkind = "runc"\npath = "${runtime}"\n`);
    await h.client.start(keep);
    const keepPid = (await h.client.inspect(keep)).process!.pid;
    await rename(runtime, `${runtime}.away`);
    // The first start meets the missing binary; after it every start is refused at once.
    await assert.rejects(h.client.start(next), RuntimeError);
    const health = await h.client.health();
    assert.equal(health.status, "degraded");
    assert.match(health.problems.join(" "), /not found/);
    await assert.rejects(
      h.client.start(next),
      (e: unknown) => e instanceof RuntimeError && e.variant === "executor_degraded",
    );
    // executor_degraded, not a runtime error: the health gate refused it without trying (no hang).
    assert.equal((await h.client.inspect(keep)).process?.pid, keepPid, "running containers are left alone");
    assert.ok(h.notifications.some((n) => n.type === "health" && n.health.status === "degraded"));
    await rename(`${runtime}.away`, runtime);
    const from = h.notifications.length;
    await h.client.start(next);
    assert.deepEqual(await h.waitForExit(next, from), { type: "exit", code: 0, reason: "shutdown" });
    assert.equal((await h.client.health()).status, "ok");
    await h.client.stop(keep);
  });
});
