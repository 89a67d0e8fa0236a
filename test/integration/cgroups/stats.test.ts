import { test } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import { setupTestCgroups } from "./helpers.js";
import { readStats } from "../../../src/daemon/cgroups/cgroup-stats.js";
import { applyLimits } from "../../../src/daemon/cgroups/limits.js";

const MiB = 1024 * 1024;

void test("statistics of a cgroup move when its process allocates memory", async () => {
  const cgroups = await setupTestCgroups();
  const { tree, layout } = cgroups;
  try {
    const path = await cgroups.create("stats");
    await applyLimits(layout, path, { memory: { limit: 256 * MiB }, pids: { max: 10 } });
    // The node child allocates 48 MiB after it was moved (a v1 cgroup only charges pages touched after the move).
    const held = cgroups.spawnHeld(
      `exec ${process.execPath} -e 'globalThis.keep = Buffer.alloc(48 << 20, 1); console.log("allocated"); setInterval(() => {}, 1e6)'`,
    );
    await tree.attach(path, held.pid);
    const before = readStats(layout, path);
    assert.equal(before.pids?.current, 1);
    assert.equal(before.pids?.limit, 10);
    assert.equal(before.memory?.limit, 256 * MiB);

    held.release();
    await once(held.child.stdout!, "data");
    const after = readStats(layout, path);
    assert.ok(after.memory!.usage >= before.memory.usage + 40 * MiB, `usage ${after.memory!.usage}`);
    assert.ok(after.memory!.peak! >= after.memory!.usage);
    assert.ok(after.memory!.anon >= 40 * MiB, `anon ${after.memory!.anon}`);
    assert.ok(after.cpu!.usageNs > before.cpu!.usageNs);
    assert.ok(after.io !== undefined);
  } finally {
    await cgroups.cleanup();
  }
});

void test("statistics of a missing cgroup are all undefined", async () => {
  const cgroups = await setupTestCgroups();
  try {
    const stats = readStats(cgroups.layout, `${cgroups.tree.rootPath}/nothing`);
    assert.deepEqual(stats, { memory: undefined, cpu: undefined, pids: undefined, io: undefined });
  } finally {
    await cgroups.cleanup();
  }
});
