import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { connectMonitor, readExitRecord } from "../../../src/daemon/monitor/client.js";
import { createTestEnv, type TestEnv } from "./env.js";
import { waitFor as waitForCondition } from "../../helpers/wait.js";
import { alive } from "../../helpers/cleanup.js";

async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined): Promise<T> {
  return waitForCondition(probe, { timeoutMs: 20_000, what, intervalMs: 10 });
}

describe("monitor: daemon disconnects and reconnects", () => {
  let env: TestEnv;
  before(() => {
    env = createTestEnv();
  });
  after(() => env.cleanup());

  it("keeps supervising without a daemon and reports the current state on reconnect", async () => {
    const first = await env.launch("state", ["sleep", "60"]);
    const initPid = await until("INIT", () => first.initPid);
    first.close();
    assert.ok(alive(first.monitorPid), "monitor survives the closed connection");

    const second = await connectMonitor(env.stateDir("state"));
    assert.equal(second.monitorPhase, "created");
    assert.equal(second.initPid, initPid);
    await second.start();
    second.close();

    const third = await connectMonitor(env.stateDir("state"));
    assert.equal(third.monitorPhase, "running");
    assert.equal(third.initPid, initPid);
    await third.kill("SIGKILL");
    assert.deepEqual((await third.exited()).status, { signal: 9 });
    await until("monitor exit", () => (alive(third.monitorPid) ? undefined : true));
    assert.equal(existsSync(join(env.stateDir("state"), "monitor.sock")), false);
  });

  it("records an exit that happens with no daemon connected and delivers it on reconnect", async () => {
    const conn = await env.launch("offline", ["sleep", "60"]);
    await conn.start();
    const { monitorPid } = conn;
    const initPid = conn.initPid!;
    conn.close(); // the daemon "dies": no goodbye on the socket
    process.kill(initPid, "SIGKILL");

    const onDisk = await until("exit.json", () => readExitRecord(env.stateDir("offline")));
    assert.deepEqual(onDisk.status, { signal: 9 });
    assert.equal(onDisk.initPid, initPid);
    assert.ok(alive(monitorPid), "monitor lingers until a daemon takes the exit");

    const again = await connectMonitor(env.stateDir("offline"));
    assert.equal(again.monitorPhase, "exited");
    assert.deepEqual(await again.exited(), onDisk);
    await until("monitor exit", () => (alive(monitorPid) ? undefined : true));
  });

  it("gives up lingering after --linger-ms, leaving the record on disk", async () => {
    const conn = await env.launch("linger", ["sleep", "60"], { lingerMs: 50 });
    await conn.start();
    const { monitorPid } = conn;
    conn.close();
    process.kill(conn.initPid!, "SIGKILL");
    await until("monitor exit", () => (alive(monitorPid) ? undefined : true));
    assert.deepEqual((await readExitRecord(env.stateDir("linger")))?.status, { signal: 9 });
    await assert.rejects(connectMonitor(env.stateDir("linger")), /ENOENT/);
  });
});
