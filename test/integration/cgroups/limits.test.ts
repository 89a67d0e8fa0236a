import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { setupTestCgroups } from "./helpers.js";
import { applyLimits } from "../../../src/daemon/cgroups/limits.js";

void test("memory, cpu, cpuset and pids limits land in the v1 files of a group", async () => {
  const cgroups = await setupTestCgroups();
  const { tree, layout } = cgroups;
  try {
    const group = await tree.createGroup("limited", {
      memory: {
        limit: 32 * 1024 * 1024,
        reservation: 16 * 1024 * 1024,
        swap: 64 * 1024 * 1024,
        swappiness: 20,
      },
      cpu: { shares: 256, quota: 50000, period: 100000, cpus: "0" },
      pids: { max: 42 },
    });
    const read = async (controller: string, file: string): Promise<string> =>
      (await readFile(`${layout.controllers.get(controller)!.mount}${group}/${file}`, "utf8")).trim();
    assert.equal(await read("memory", "memory.limit_in_bytes"), String(32 * 1024 * 1024));
    assert.equal(await read("memory", "memory.soft_limit_in_bytes"), String(16 * 1024 * 1024));
    assert.equal(await read("memory", "memory.memsw.limit_in_bytes"), String(64 * 1024 * 1024));
    assert.equal(await read("memory", "memory.swappiness"), "20");
    assert.equal(await read("cpu", "cpu.shares"), "256");
    assert.equal(await read("cpu", "cpu.cfs_quota_us"), "50000");
    assert.equal(await read("cpu", "cpu.cfs_period_us"), "100000");
    assert.equal(await read("cpuset", "cpuset.cpus"), "0");
    assert.equal(await read("pids", "pids.max"), "42");

    // Lowering the limit below the current memsw and raising memsw above it needs opposite write orders.
    await applyLimits(layout, group, { memory: { limit: 8 * 1024 * 1024, swap: 8 * 1024 * 1024 } });
    assert.equal(await read("memory", "memory.memsw.limit_in_bytes"), String(8 * 1024 * 1024));
    await applyLimits(layout, group, { memory: { limit: 128 * 1024 * 1024, swap: 256 * 1024 * 1024 } });
    assert.equal(await read("memory", "memory.limit_in_bytes"), String(128 * 1024 * 1024));
    assert.equal(await read("memory", "memory.memsw.limit_in_bytes"), String(256 * 1024 * 1024));

    await applyLimits(layout, group, { pids: { max: -1 } });
    assert.equal(await read("pids", "pids.max"), "max");
    await assert.rejects(
      applyLimits(layout, group, { cpu: { cpus: "999" } }),
      /^CgroupLimitError: cpu\.cpus: /,
    );
  } finally {
    await cgroups.cleanup();
  }
});
