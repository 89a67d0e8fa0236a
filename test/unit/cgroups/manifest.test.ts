import { test } from "node:test";
import assert from "node:assert/strict";
import { limitsFromManifestCgroups } from "../../../src/daemon/cgroups/manifest.js";

const noDevices = {
  weight_device: [],
  throttle_read_bps_device: [],
  throttle_read_iops_device: [],
  throttle_write_bps_device: [],
  throttle_write_iops_device: [],
};

void test("Northstar manifest cgroups map onto CgroupLimits; unsupported fields become warnings", () => {
  const warnings: string[] = [];
  const limits = limitsFromManifestCgroups(
    {
      parent: "/elsewhere",
      memory: {
        oom_monitor: true,
        memory_hard_limit: 100000000,
        memory_soft_limit: 50000000,
        memory_swap_limit: 200000000,
        swappiness: 0,
        kernel_memory_limit: 1000,
      },
      cpu: { shares: 100, quota: 20000, period: 100000, cpus: "0-1", realtime_runtime: 5 },
      blkio: {
        ...noDevices,
        weight: 200,
        weight_device: [
          { major: 8, minor: 0, weight: 300 },
          { major: 8, minor: 1, leaf_weight: 10 },
        ],
        throttle_read_bps_device: [{ major: 8, minor: 0, rate: 1048576 }],
        attrs: { "blkio.foo": "1" },
      },
      pids: { max: 32 },
    },
    warnings,
  );
  assert.deepEqual(limits, {
    memory: { limit: 100000000, reservation: 50000000, swap: 200000000, swappiness: 0 },
    cpu: { shares: 100, quota: 20000, period: 100000, cpus: "0-1" },
    io: {
      weight: 200,
      weightDevice: [{ major: 8, minor: 0, weight: 300 }],
      readBps: [{ major: 8, minor: 0, rate: 1048576 }],
    },
    pids: { max: 32 },
  });
  assert.deepEqual(
    warnings.map((w) => w.split(":")[0]),
    [
      "cgroups.memory.kernel_memory_limit",
      "cgroups.cpu.realtime_runtime",
      "cgroups.blkio.leaf_weight",
      "cgroups.blkio.attrs",
    ],
  );
});

void test("an empty section gives no limits and no warnings", () => {
  const warnings: string[] = [];
  assert.deepEqual(limitsFromManifestCgroups({}, warnings), {});
  assert.deepEqual(
    limitsFromManifestCgroups({ memory: { oom_monitor: false }, blkio: noDevices }, warnings),
    {
      memory: {},
      io: {},
    },
  );
  assert.deepEqual(warnings, []);
});
