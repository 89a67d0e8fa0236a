import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { readExitRecord, spawnMonitor } from "../../../src/daemon/monitor/client.js";
import { createTestEnv, withSysBoot, type TestEnv } from "./env.js";

describe("monitor: exit status and reason", () => {
  let env: TestEnv;
  before(() => {
    env = createTestEnv();
  });
  after(() => env.cleanup());

  async function runToExit(name: string, script: string) {
    const conn = await env.launch(name, ["sh", "-c", script]);
    await conn.start();
    return conn.exited();
  }

  for (const code of [0, 1, 10, 127, 128, 255]) {
    it(`reports exit code ${code} exactly`, async () => {
      const record = await runToExit(`code${code}`, `exit ${code}`);
      assert.deepEqual(record.status, { code });
      assert.equal(record.reason, "shutdown");
      assert.deepEqual(await readExitRecord(env.stateDir(`code${code}`)), record);
    });
  }

  it("reports a missing program as 127 from skiff-init's exec", async () => {
    const conn = await env.launch("noexec", ["/bin/does-not-exist"]);
    await conn.start();
    assert.deepEqual((await conn.exited()).status, { code: 127 });
  });

  for (const signal of ["SIGTERM", "SIGKILL"] as const) {
    it(`reports death by ${signal} as a signal, not a code`, async () => {
      const conn = await env.launch(`sig-${signal}`, ["sleep", "60"]);
      await conn.start();
      await conn.kill(signal);
      const record = await conn.exited();
      assert.deepEqual(record.status, { signal: signal === "SIGTERM" ? 15 : 9 });
      assert.equal(record.reason, "shutdown");
    });
  }

  it("kills every process with kill --all through the runtime", async () => {
    const conn = await env.launch("killall", ["sh", "-c", "sleep 60 & sleep 60"]);
    await conn.start();
    await conn.kill("SIGKILL", { all: true });
    assert.deepEqual((await conn.exited()).status, { signal: 9 });
  });

  it("accepts START while the runtime is still creating and answers once", async () => {
    const conn = await env.launch("early", ["sh", "-c", "exit 7"]);
    const starts = [conn.start(), conn.start()];
    await Promise.all(starts);
    assert.deepEqual((await conn.exited()).status, { code: 7 });
  });

  it("rejects a kill with an invalid signal", async () => {
    const conn = await env.launch("badsig", ["sleep", "60"]);
    await assert.rejects(conn.kill(99), /signal between 1 and 64/);
    await conn.kill("SIGKILL");
    assert.deepEqual((await conn.exited()).status, { signal: 9 });
  });

  it("forwards SIGTERM from init to the app (the app's handler runs)", async () => {
    const conn = await env.launch("trap", [
      "sh",
      "-c",
      "trap 'exit 42' TERM; echo ready; while true; do sleep 1; done",
    ]);
    const ready = new Promise<void>((resolve) => conn.on("log", (_s, line) => line === "ready" && resolve()));
    await conn.start();
    await ready;
    await conn.kill("SIGTERM");
    assert.deepEqual((await conn.exited()).status, { code: 42 });
  });

  for (const [command, reason, signal] of [
    ["reboot -f", "reboot", 1],
    ["poweroff -f", "shutdown", 2],
  ] as const) {
    it(`classifies reboot(2) from inside (${command}) as ${reason}`, async () => {
      const name = command.split(" ")[0]!;
      const conn = await spawnMonitor({
        id: `${env.cgroupPrefix.slice(1)}-${name}`,
        bundleDir: env.bundle(name, ["sh", "-c", `trap "" HUP INT; ${command}; sleep 60`], withSysBoot),
        stateDir: env.stateDir(name),
        runtime: "/usr/sbin/runc",
        runtimeRoot: env.runtimeRoot,
        io: { stdout: "inherit", stderr: "inherit" },
        log: { maxBytes: 1 << 20, files: 1 },
      });
      await conn.start();
      const record = await conn.exited();
      assert.equal(record.reason, reason);
      assert.deepEqual(record.status, { signal });
    });
  }

  it("reports a failing runtime create as reason error with the runtime's message", async () => {
    const conn = await spawnMonitor({
      id: `${env.cgroupPrefix.slice(1)}-broken`,
      bundleDir: env.bundle("broken", ["true"], (c) => (c.root.path = "/nonexistent-skiff-rootfs")),
      stateDir: env.stateDir("broken"),
      runtime: "/usr/sbin/runc",
      runtimeRoot: env.runtimeRoot,
      io: { stdout: "inherit", stderr: "inherit" },
      log: { maxBytes: 1 << 20, files: 1 },
    });
    await assert.rejects(conn.start());
    const record = await conn.exited();
    assert.equal(record.reason, "error");
    assert.notDeepEqual(record.status, { code: 0 });
    assert.match(record.error ?? "", /nonexistent-skiff-rootfs/);
    assert.equal(record.initPid, undefined);
  });
});
