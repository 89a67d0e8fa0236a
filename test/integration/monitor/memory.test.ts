import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { connectMonitor, readExitRecord } from "../../../src/daemon/monitor/client.js";
import type { MonitorConnection } from "../../../src/daemon/monitor/connection.js";
import type { ExitRecord, MemoryCounts } from "../../../src/daemon/monitor/protocol.js";
import { createTestEnv, withMemoryLimit, type TestEnv } from "./env.js";
import { waitFor as waitForCondition } from "../../helpers/wait.js";

const MiB = 1 << 20;
// Doubles a shell string until the memory limit stops it.
const EATER = ["sh", "-c", 's=x; while true; do s="$s$s"; done'];

/** Everything the connection reports, in arrival order. */
function record(conn: MonitorConnection): {
  events: (MemoryCounts | ExitRecord)[];
  exit: Promise<ExitRecord>;
} {
  const events: (MemoryCounts | ExitRecord)[] = [];
  conn.on("memory", (counts) => events.push(counts));
  conn.on("exit", (exit) => events.push(exit));
  return { events, exit: conn.exited() };
}

function isMemory(event: MemoryCounts | ExitRecord): event is MemoryCounts {
  return "oom_kill" in event;
}

describe("monitor: memory events and OOM kills (v1 eventfd or v2 memory.events)", () => {
  let env: TestEnv;
  before(() => {
    env = createTestEnv();
  });
  after(() => env.cleanup());

  it("reports an OOM kill as MEMORY before EXIT, and the exit as oom with signal 9", async () => {
    const conn = await env.launch(
      "eater",
      EATER,
      { memoryCgroup: env.memoryCgroup("eater") },
      withMemoryLimit(32 * MiB),
    );
    const { events, exit } = record(conn);
    await conn.start();
    const result = await exit;
    assert.deepEqual(result.status, { signal: 9 });
    assert.equal(result.oom, true);
    assert.equal(events.at(-1), result, "EXIT is the last event");
    const memory = events.filter(isMemory);
    assert.ok(memory.length >= 1, "at least one MEMORY");
    const kills = memory.reduce((sum, m) => sum + m.oom_kill, 0);
    assert.ok(kills >= 1, JSON.stringify(memory));
    for (const m of memory)
      assert.ok(
        Object.values(m).some((v) => v > 0),
        `MEMORY only when something moved: ${JSON.stringify(m)}`,
      );
    assert.equal((await readExitRecord(env.stateDir("eater")))?.oom, true);
  });

  it("notifies an OOM kill while the container keeps running (the eventfd, not the exit read)", async () => {
    // The subshell is the largest task and is killed; the app's shell survives it.
    const script = `(${EATER[2]}); echo survived; sleep 60`;
    const conn = await env.launch(
      "survivor",
      ["sh", "-c", script],
      { memoryCgroup: env.memoryCgroup("survivor") },
      withMemoryLimit(32 * MiB),
    );
    const survived = new Promise<void>((resolve) =>
      conn.on("log", (_s, line) => line === "survived" && resolve()),
    );
    // MEMORY carries what moved since the last one: on v2 the first is often `max` alone (memory.events
    // changes when the limit is hit, before the kill), so add them up until the kill is counted.
    const seen: MemoryCounts[] = [];
    const killed = new Promise<void>((resolve) =>
      conn.on("memory", (counts) => {
        seen.push(counts);
        if (seen.reduce((sum, m) => sum + m.oom_kill, 0) >= 1) resolve();
      }),
    );
    await conn.start();
    await killed;
    await survived;
    assert.ok(seen.reduce((sum, m) => sum + m.oom_kill, 0) >= 1, JSON.stringify(seen));
    assert.equal(conn.exitRecord, undefined, "the container still runs");
    await conn.kill("SIGKILL");
    const result = await conn.exited();
    assert.deepEqual(result.status, { signal: 9 });
    assert.equal(result.oom, true, "a task of the container was OOM-killed");
  });

  it("has no oom for a container killed by SIGKILL without running out of memory", async () => {
    const conn = await env.launch(
      "plainkill",
      ["sleep", "60"],
      { memoryCgroup: env.memoryCgroup("plainkill") },
      withMemoryLimit(32 * MiB),
    );
    const { events, exit } = record(conn);
    await conn.start();
    await conn.kill("SIGKILL");
    const result = await exit;
    assert.deepEqual(result.status, { signal: 9 });
    assert.equal(result.oom, undefined);
    assert.equal(
      events.filter(isMemory).reduce((sum, m) => sum + m.oom_kill, 0),
      0,
    );
    assert.equal((await readExitRecord(env.stateDir("plainkill")))?.oom, undefined);
  });

  it("reports an OOM kill caused by the group's limit, with the group's baseline", async () => {
    // The group's cgroup holds the limit; the container's own has none.
    const groupDir = env.memoryCgroup("group");
    mkdirSync(groupDir, { recursive: true });
    if (env.memoryV2) {
      writeFileSync(join(groupDir, "memory.max"), String(32 * MiB));
      writeFileSync(join(groupDir, "memory.swap.max"), "0");
    } else {
      writeFileSync(join(groupDir, "memory.limit_in_bytes"), String(32 * MiB));
      writeFileSync(join(groupDir, "memory.swappiness"), "0");
    }
    const conn = await env.launch(
      "member",
      EATER,
      { memoryCgroup: env.memoryCgroup("group/member"), memoryGroupDir: groupDir },
      (config) => (config.linux.cgroupsPath = `${env.cgroupPrefix}/group/member`),
    );
    const { events, exit } = record(conn);
    await conn.start();
    const result = await exit;
    assert.deepEqual(result.status, { signal: 9 });
    assert.equal(result.oom, true);
    assert.ok(
      events.filter(isMemory).some((m) => m.oom_kill >= 1),
      JSON.stringify(events),
    );
  });

  it("keeps counts for a daemon that reconnects after the exit, and sends them before EXIT", async () => {
    // The eater waits for a file from the host, so it runs only once no daemon is connected.
    const gate = join(env.dir, "gate");
    mkdirSync(gate);
    const gated = ["sh", "-c", `while [ ! -e /tmp/go ]; do sleep 0.05; done; ${EATER[2]}`];
    const first = await env.launch(
      "offline",
      gated,
      { memoryCgroup: env.memoryCgroup("offline") },
      (config) => {
        withMemoryLimit(32 * MiB)(config);
        config.mounts.push({ destination: "/tmp", type: "bind", source: gate, options: ["bind", "rw"] });
      },
    );
    await first.start();
    first.close();
    writeFileSync(join(gate, "go"), "");
    const recorded: ExitRecord = await waitForCondition(() => readExitRecord(env.stateDir("offline")), {
      timeoutMs: 20_000,
      what: "the exit record",
    });
    assert.equal(recorded.oom, true);
    const second = await connectMonitor(env.stateDir("offline"));
    const { events, exit } = record(second);
    const result = await exit;
    assert.equal(result.oom, true);
    assert.equal(events.length, 2, JSON.stringify(events));
    assert.ok(isMemory(events[0]!) && events[0].oom_kill >= 1, JSON.stringify(events));
  });
});
