import { test } from "node:test";
import assert from "node:assert/strict";
import { limitsFromManifestCgroups } from "../../../src/daemon/cgroups/manifest.js";
import { limitsToOciResources } from "../../../src/daemon/cgroups/oci.js";

void test("Northstar manifest cgroups map onto CgroupLimits", () => {
  const limits = limitsFromManifestCgroups({
    memory: {
      oom_monitor: true,
      memory_hard_limit: 100000000,
      memory_soft_limit: 50000000,
      memory_swap_limit: 200000000,
      swappiness: 0,
      kernel_memory_limit: 1000,
      kernel_tcp_memory_limit: 1000,
    },
    cpu: { shares: 100, quota: 20000, period: 100000, cpus: "0-1", realtime_runtime: 5, realtime_period: 5 },
    blkio: {
      weight: 200,
      leaf_weight: 10,
      weight_device: [
        { major: 8, minor: 0, weight: 300, leaf_weight: 10 },
        { major: 8, minor: 1, leaf_weight: 10 },
      ],
      throttle_read_bps_device: [{ major: 8, minor: 0, rate: 1048576 }],
      throttle_write_iops_device: [],
    },
  });
  assert.deepEqual(limits, {
    memory: { limit: 100000000, reservation: 50000000, swap: 200000000, swappiness: 0 },
    cpu: { shares: 100, quota: 20000, period: 100000, cpus: "0-1" },
    io: {
      weight: 200,
      weightDevice: [{ major: 8, minor: 0, weight: 300 }],
      readBps: [{ major: 8, minor: 0, rate: 1048576 }],
    },
  });
});

void test("an empty section gives no limits; raw attrs are refused with the field path", () => {
  assert.deepEqual(limitsFromManifestCgroups({}), {});
  assert.deepEqual(limitsFromManifestCgroups({ memory: {} }), { memory: {} });
  assert.throws(
    () => limitsFromManifestCgroups({ cpu: { attrs: { "cpu.idle": "1" } } }),
    /^CgroupLimitError: cgroups\.cpu\.attrs: /,
  );
});

void test("OCI linux.resources from limits", () => {
  assert.deepEqual(
    limitsToOciResources({
      memory: { limit: 10, swap: 20 },
      cpu: { weight: 10000, cpus: "0" },
      io: { weight: 100, readBps: [{ major: 1, minor: 2, rate: 3 }] },
      pids: { max: 9 },
    }),
    {
      memory: { limit: 10, swap: 20 },
      cpu: { cpus: "0", shares: 262144 },
      blockIO: { weight: 100, throttleReadBpsDevice: [{ major: 1, minor: 2, rate: 3 }] },
      pids: { limit: 9 },
    },
  );
});
