import { test } from "node:test";
import assert from "node:assert/strict";
import {
  attrFilesFromManifestCgroups,
  limitsFromManifestCgroups,
} from "../../../src/daemon/cgroups/manifest.js";
import { CgroupLimitError } from "../../../src/daemon/cgroups/limits.js";

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
    ["cgroups.memory.kernel_memory_limit", "cgroups.cpu.realtime_runtime", "cgroups.blkio.leaf_weight"],
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

void test("attrs become writes into the container's cgroup; only the controller's own files", () => {
  const warnings: string[] = [];
  const files = attrFilesFromManifestCgroups(
    {
      cpu: { attrs: { "cpu.rt_runtime_us": "1000" } },
      memory: { oom_monitor: false, attrs: { "memory.swappiness": "10", "memory.oom.group": "1" } },
      blkio: { ...noDevices, attrs: { "blkio.weight": "100" } },
    },
    warnings,
  );
  assert.deepEqual(files, [
    {
      controller: "cpu",
      file: "cpu.rt_runtime_us",
      value: "1000",
      field: "cgroups.cpu.attrs.cpu.rt_runtime_us",
    },
    {
      controller: "memory",
      file: "memory.swappiness",
      value: "10",
      field: "cgroups.memory.attrs.memory.swappiness",
    },
    {
      controller: "memory",
      file: "memory.oom.group",
      value: "1",
      field: "cgroups.memory.attrs.memory.oom.group",
    },
  ]);
  assert.match(warnings.join("\n"), /cgroups.blkio.attrs: not applied/);
  assert.deepEqual(attrFilesFromManifestCgroups(undefined), []);
  for (const [controller, key] of [
    ["cpu", "memory.limit_in_bytes"],
    ["cpu", "cgroup.procs"],
    ["memory", "../memory.limit_in_bytes"],
    ["memory", "memory.x/../../y"],
    ["memory", "tasks"],
    ["cpu", "cpu."],
  ] as const) {
    const cgroups =
      controller === "cpu"
        ? { cpu: { attrs: { [key]: "1" } } }
        : { memory: { oom_monitor: false, attrs: { [key]: "1" } } };
    assert.throws(
      () => attrFilesFromManifestCgroups(cgroups),
      (error: unknown) =>
        error instanceof CgroupLimitError && error.field === `cgroups.${controller}.attrs.${key}`,
    );
  }
});
