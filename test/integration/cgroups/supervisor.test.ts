import { test } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import { access } from "node:fs/promises";
import { pino, type Logger } from "pino";
import { setupTestCgroups } from "./helpers.js";
import { CgroupSupervisor, type SupervisorConfig } from "../../../src/daemon/cgroups/supervisor.js";
import { allDirs } from "../../../src/daemon/cgroups/paths.js";
import type { CgroupLayout } from "../../../src/daemon/cgroups/layout.js";
import { readFile } from "node:fs/promises";
import { waitFor as waitForCondition } from "../../helpers/wait.js";

const MiB = 1024 * 1024;

function capturingLogger(): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const log = pino(
    { level: "info" },
    { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
  );
  return { log, lines };
}

async function existsEverywhere(layout: CgroupLayout, path: string): Promise<boolean[]> {
  return Promise.all(
    allDirs(layout, path).map((dir) =>
      access(dir).then(
        () => true,
        () => false,
      ),
    ),
  );
}

/** oom_kill of a container cgroup's memory.oom_control (v1) or memory.events (v2), 0 when gone. */
async function oomKills(layout: CgroupLayout, path: string): Promise<number> {
  const mount = layout.controllers.get("memory")!;
  const file = mount.version === 1 ? "memory.oom_control" : "memory.events";
  const text = await readFile(`${mount.mount}${path}/${file}`, "utf8").catch(() => "");
  return Number(/^oom_kill (\d+)$/m.exec(text)?.[1] ?? 0);
}

void test("supervisor: a group's memory limit holds for its containers together; OOM counted; nothing left", async () => {
  const cgroups = await setupTestCgroups();
  const { layout } = cgroups;
  const { log } = capturingLogger();
  const config: SupervisorConfig = {
    cgroup: cgroups.tree.rootName,
    oomMonitorAll: false,
    groups: [{ name: "gate", memory: 32 * MiB, pids: 50, maxContainers: 2 }],
  };
  const supervisor = new CgroupSupervisor(layout, config, log);
  try {
    await supervisor.start();
    const groupPath = `${cgroups.tree.rootPath}/gate`;
    assert.deepEqual(
      await existsEverywhere(layout, groupPath),
      layout.hierarchies.map(() => true),
    );
    const groupStats = supervisor.stats(groupPath);
    assert.equal(groupStats.memory?.limit, 32 * MiB);
    assert.equal(groupStats.pids?.limit, 50);

    const holder = { name: "holder", group: "gate", cgroups: { memory: { oom_monitor: true } } };
    const grower = { name: "grower", cgroups: { parent: "gate", memory: { oom_monitor: true } } };
    const holderPath = supervisor.containerPath(holder);
    const growerPath = supervisor.containerPath(grower);
    assert.equal(holderPath, `${groupPath}/holder`);
    assert.equal(growerPath, `${groupPath}/grower`);
    await cgroups.tree.create(holderPath); // runc creates a container's own cgroup
    await cgroups.tree.create(growerPath);

    // The monitors read memory events; here the OOM kill is read from the cgroups directly.
    assert.equal(supervisor.monitorsMemory(holder), true);
    assert.deepEqual(supervisor.monitorMemoryDirs(holderPath).memoryGroupDir?.endsWith(groupPath), true);

    // 20 MiB held in one container and 24 MiB in the other each fit 32 MiB, but not together.
    const held = cgroups.spawnHeld(
      `exec ${process.execPath} -e 'globalThis.keep = Buffer.alloc(20 << 20, 1); console.log("allocated"); setInterval(() => {}, 1e6)'`,
    );
    await cgroups.tree.attach(holderPath, held.pid);
    held.release();
    await once(held.child.stdout!, "data");
    const grows = cgroups.spawnHeld("dd if=/dev/zero of=/dev/null bs=24M count=1 2>/dev/null; exit 0");
    await cgroups.tree.attach(growerPath, grows.pid);
    grows.release();
    let killed: number[] = [0, 0];
    await waitForCondition(
      async () =>
        (killed = await Promise.all([holderPath, growerPath].map((p) => oomKills(layout, p)))).some(
          (n) => n > 0,
        ),
      { timeoutMs: 20_000, what: "an OOM kill in one of the two cgroups" },
    ).catch(() => undefined);
    assert.ok(
      killed.some((n) => n > 0),
      "one of the two containers had a task OOM-killed",
    );

    const stats = supervisor.stats(holderPath);
    assert.equal(typeof stats.memory?.usage, "number");
    assert.equal(typeof stats.memory?.stat, "object");
    assert.equal(typeof stats.cpu?.usage_ns, "number");

    await grows.exited; // sh goes on after dd, killed or not
    const holderAlive = held.child.exitCode === null && held.child.signalCode === null;
    const holderReport = await supervisor.cleanup(holderPath);
    if (holderAlive) assert.deepEqual(holderReport, { wasEmpty: false, killed: [held.pid] });
    assert.deepEqual(await supervisor.cleanup(growerPath), { wasEmpty: true, killed: [] });
    await held.exited;
    for (const path of [holderPath, growerPath]) {
      assert.deepEqual(
        await existsEverywhere(layout, path),
        layout.hierarchies.map(() => false),
      );
    }

    assert.deepEqual(await supervisor.stop(), { kept: [] });
    assert.deepEqual(
      await existsEverywhere(layout, cgroups.tree.rootPath),
      layout.hierarchies.map(() => false),
    );
  } finally {
    await supervisor.stop().catch(() => undefined);
    await cgroups.cleanup();
  }
});

void test("supervisor: memory events only with oom_monitor; unknown groups and foreign paths refused; busy root kept", async () => {
  const cgroups = await setupTestCgroups();
  const { layout } = cgroups;
  const { log } = capturingLogger();
  const config: SupervisorConfig = { cgroup: cgroups.tree.rootName, oomMonitorAll: false, groups: [] };
  const supervisor = new CgroupSupervisor(layout, config, log);
  try {
    await supervisor.start();
    assert.throws(
      () => supervisor.containerPath({ name: "x", group: "nope" }),
      /group names process group "nope"/,
    );
    // A parent naming no group is a path below the root (Northstar's placement); escapes are refused.
    const path = supervisor.containerPath({ name: "plain", cgroups: { parent: "not-a-group" } });
    assert.equal(path, `${cgroups.tree.rootPath}/not-a-group/plain`);
    assert.throws(
      () => supervisor.containerPath({ name: "x", cgroups: { parent: "../up" } }),
      /cgroups.parent/,
    );
    await cgroups.tree.create(path);
    assert.equal(supervisor.monitorsMemory({}), false);
    assert.equal(supervisor.monitorMemoryDirs(path).memoryGroupDir, undefined, "no group");
    await assert.rejects(supervisor.cleanup(cgroups.tree.rootPath), /is not a container cgroup below/);
    await assert.rejects(supervisor.cleanup("/elsewhere/x"), /is not a container cgroup below/);

    assert.deepEqual(await supervisor.stop(), { kept: [cgroups.tree.rootPath] });
    assert.deepEqual(
      await existsEverywhere(layout, path),
      layout.hierarchies.map(() => true),
    );
    const leftover = cgroups.spawnHeld("exit 0"); // never released: still there at cleanup
    await cgroups.tree.attach(path, leftover.pid);
    assert.deepEqual(await supervisor.cleanup(path), { wasEmpty: false, killed: [leftover.pid] });
    assert.deepEqual(await leftover.exited, [null, "SIGKILL"]);
    assert.deepEqual(
      await existsEverywhere(layout, path),
      layout.hierarchies.map(() => false),
    );
    assert.deepEqual(
      await existsEverywhere(layout, `${cgroups.tree.rootPath}/not-a-group`),
      layout.hierarchies.map(() => false),
      "the empty parent level is removed with the container",
    );
    assert.deepEqual(await supervisor.stop(), { kept: [] });
  } finally {
    await cgroups.cleanup();
  }
});

void test("supervisor: oom_monitor_all reports memory events of containers whose manifest does not ask", async () => {
  const cgroups = await setupTestCgroups();
  const { log } = capturingLogger();
  const config: SupervisorConfig = { cgroup: cgroups.tree.rootName, oomMonitorAll: true, groups: [] };
  const supervisor = new CgroupSupervisor(cgroups.layout, config, log);
  try {
    await supervisor.start();
    assert.equal(supervisor.monitorsMemory({}), true);
    await supervisor.stop();
  } finally {
    await cgroups.cleanup();
  }
});
