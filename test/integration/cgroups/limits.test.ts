import { test } from "node:test";
import assert from "node:assert/strict";
import { setupTestCgroups } from "./helpers.js";
import { applyLimits, sharesToWeight } from "../../../src/daemon/cgroups/limits.js";
import {
  controllerVersion,
  readControl,
  readMemoryLimit,
  readMemoryReservation,
  readMemorySwapLimit,
} from "../../helpers/cgroupfs.js";

const MiB = 1024 * 1024;

void test("memory, cpu, cpuset and pids limits land in the files of the host's layout and read back", async () => {
  const cgroups = await setupTestCgroups();
  const { tree, layout } = cgroups;
  try {
    const group = await tree.createGroup("limited", {
      memory: { limit: 32 * MiB, reservation: 16 * MiB, swap: 64 * MiB, swappiness: 20 },
      cpu: { shares: 256, quota: 50000, period: 100000, cpus: "0" },
      pids: { max: 42 },
    });
    const read = (controller: string, file: string): Promise<string> => readControl(controller, group, file);
    assert.equal(await readMemoryLimit(group), 32 * MiB);
    assert.equal(await readMemoryReservation(group), 16 * MiB);
    assert.equal(await readMemorySwapLimit(group), 64 * MiB);
    assert.equal(await read("cpuset", "cpuset.cpus"), "0");
    assert.equal(await read("pids", "pids.max"), "42");
    if ((await controllerVersion("memory")) === 1) {
      assert.equal(await read("memory", "memory.swappiness"), "20");
    } else {
      // v2 has no per-cgroup swappiness; memory+swap 64 MiB over a 32 MiB limit is 32 MiB of swap.
      assert.equal(await read("memory", "memory.swap.max"), String(32 * MiB));
    }
    if ((await controllerVersion("cpu")) === 1) {
      assert.equal(await read("cpu", "cpu.shares"), "256");
      assert.equal(await read("cpu", "cpu.cfs_quota_us"), "50000");
      assert.equal(await read("cpu", "cpu.cfs_period_us"), "100000");
    } else {
      assert.equal(await read("cpu", "cpu.weight"), String(sharesToWeight(256)));
      assert.equal(await read("cpu", "cpu.max"), "50000 100000");
    }

    // On v1, lowering the limit below the current memsw and raising memsw above it needs opposite write
    // orders; on v2 swap is limited on its own and the same requests read back the same.
    await applyLimits(layout, group, { memory: { limit: 8 * MiB, swap: 8 * MiB } });
    assert.equal(await readMemoryLimit(group), 8 * MiB);
    assert.equal(await readMemorySwapLimit(group), 8 * MiB);
    await applyLimits(layout, group, { memory: { limit: 128 * MiB, swap: 256 * MiB } });
    assert.equal(await readMemoryLimit(group), 128 * MiB);
    assert.equal(await readMemorySwapLimit(group), 256 * MiB);
    await applyLimits(layout, group, { memory: { limit: -1, swap: -1 } });
    assert.equal(await readMemoryLimit(group), -1);
    assert.equal(await readMemorySwapLimit(group), -1);

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
