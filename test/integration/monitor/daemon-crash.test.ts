import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import { connectMonitor } from "../../../src/daemon/monitor/client.js";
import { createTestEnv, type TestEnv } from "./env.js";
import { within } from "../../helpers/wait.js";

const fixture = fileURLToPath(new URL("./daemon-fixture.js", import.meta.url));

describe("monitor: the daemon process dies", () => {
  let env: TestEnv;
  before(() => {
    env = createTestEnv();
  });
  after(() => env.cleanup());

  it("outlives a SIGKILLed daemon and reports to the next one", async () => {
    const name = "crash";
    const id = `${env.cgroupPrefix.slice(1)}-${name}`;
    const daemon = spawn(
      process.execPath,
      [fixture, id, env.bundle(name, ["sleep", "60"]), env.stateDir(name), env.runtimeRoot],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    const [line] = (await within(once(daemon.stdout, "data"), {
      timeoutMs: 60_000,
      what: "the daemon fixture to report its monitor",
    })) as [Buffer];
    const { monitorPid, initPid } = JSON.parse(line.toString()) as { monitorPid: number; initPid: number };
    env.adopt(monitorPid);
    daemon.kill("SIGKILL");
    await within(once(daemon, "exit"), { timeoutMs: 20_000, what: "the daemon fixture to die" });

    // Still alive, in its own session, no longer the dead daemon's child.
    const stat = readFileSync(`/proc/${monitorPid}/stat`, "utf8").split(") ")[1]!.split(" ");
    assert.notEqual(Number(stat[1]), daemon.pid, "reparented away from the dead daemon");
    assert.equal(Number(stat[3]), monitorPid, "monitor leads its own session");

    const conn = await connectMonitor(env.stateDir(name));
    assert.equal(conn.monitorPhase, "running");
    assert.equal(conn.initPid, initPid);
    await conn.kill("SIGTERM");
    const record = await conn.exited();
    assert.deepEqual(record.status, { signal: 15 });
    assert.equal(record.initPid, initPid);
  });
});
