import { test } from "node:test";
import assert from "node:assert/strict";
import { parseMountinfo } from "../../../src/daemon/cgroups/layout.js";
import {
  blkioWeightToIoWeight,
  limitsToFiles,
  memswToSwapMax,
  sharesToWeight,
  weightToShares,
} from "../../../src/daemon/cgroups/limits.js";
import { HYBRID_MOUNTINFO, UNIFIED_CONTROLLERS, UNIFIED_MOUNTINFO } from "./fixtures.js";

const v1 = parseMountinfo(HYBRID_MOUNTINFO, "");
const v2 = parseMountinfo(UNIFIED_MOUNTINFO, UNIFIED_CONTROLLERS);
const MiB = 1024 * 1024;

const files = (layout: typeof v1, limits: Parameters<typeof limitsToFiles>[1]): string[] =>
  limitsToFiles(layout, limits).map(({ controller, file, value }) => `${controller} ${file}=${value}`);

void test("cpu shares <-> weight follow runc's formula at the ends and the default", () => {
  assert.equal(sharesToWeight(2), 1);
  assert.equal(sharesToWeight(262144), 10000);
  assert.equal(sharesToWeight(1024), 39);
  assert.equal(weightToShares(1), 2);
  assert.equal(weightToShares(10000), 262144);
  for (let weight = 1; weight <= 10000; weight++)
    assert.equal(sharesToWeight(weightToShares(weight)), weight);
});

void test("blkio weight -> io weight", () => {
  assert.equal(blkioWeightToIoWeight(10), 1);
  assert.equal(blkioWeightToIoWeight(1000), 10000);
  assert.equal(blkioWeightToIoWeight(500), 4950);
});

void test("memory+swap becomes swap-only on v2", () => {
  assert.equal(memswToSwapMax(96 * MiB, 64 * MiB), 32 * MiB);
  assert.equal(memswToSwapMax(-1, 64 * MiB), -1);
  assert.throws(() => memswToSwapMax(32 * MiB, 64 * MiB), /^CgroupLimitError: memory\.swap: /);
  assert.throws(() => memswToSwapMax(32 * MiB, undefined), /needs a memory limit/);
});

void test("v1 files for memory, cpu, cpuset, blkio, pids", () => {
  assert.deepEqual(
    files(v1, {
      memory: { limit: 32 * MiB, reservation: 16 * MiB, swap: 64 * MiB, swappiness: 10 },
      cpu: { shares: 512, quota: 50000, period: 100000, cpus: "0", mems: "0" },
      io: {
        weight: 500,
        readBps: [{ major: 8, minor: 0, rate: 1000 }],
        writeIops: [{ major: 8, minor: 0, rate: 7 }],
      },
      pids: { max: 64 },
    }),
    [
      "memory memory.limit_in_bytes=33554432",
      "memory memory.memsw.limit_in_bytes=67108864",
      "memory memory.soft_limit_in_bytes=16777216",
      "memory memory.swappiness=10",
      "cpuset cpuset.cpus=0",
      "cpuset cpuset.mems=0",
      "cpu cpu.shares=512",
      "cpu cpu.cfs_period_us=100000",
      "cpu cpu.cfs_quota_us=50000",
      "blkio blkio.weight=500",
      "blkio blkio.throttle.read_bps_device=8:0 1000",
      "blkio blkio.throttle.write_iops_device=8:0 7",
      "pids pids.max=64",
    ],
  );
});

void test("v2 files with translations", () => {
  assert.deepEqual(
    files(v2, {
      memory: { limit: 32 * MiB, reservation: 16 * MiB, swap: 64 * MiB, swappiness: 10 },
      cpu: { shares: 1024, quota: 50000, period: 100000 },
      io: {
        weight: 1000,
        weightDevice: [{ major: 8, minor: 16, weight: 10 }],
        readBps: [{ major: 8, minor: 0, rate: 1000 }],
        writeIops: [{ major: 8, minor: 0, rate: 7 }],
      },
      pids: { max: -1 },
    }),
    [
      "memory memory.max=33554432",
      "memory memory.swap.max=33554432",
      "memory memory.low=16777216",
      "cpu cpu.weight=39",
      "cpu cpu.max=50000 100000",
      "io io.weight=default 10000",
      "io io.weight=8:16 1",
      "io io.max=8:0 rbps=1000 wiops=7",
      "pids pids.max=max",
    ],
  );
  assert.deepEqual(files(v2, { cpu: { quota: -1 } }), ["cpu cpu.max=max"]);
  assert.deepEqual(files(v2, { memory: { limit: -1 } }), ["memory memory.max=max"]);
});

void test("a v2 weight on a v1 host becomes shares", () => {
  assert.deepEqual(files(v1, { cpu: { weight: 10000 } }), ["cpu cpu.shares=262144"]);
});

void test("invalid values and missing controllers name the field", () => {
  assert.throws(() => limitsToFiles(v1, { cpu: { shares: 1 } }), /^CgroupLimitError: cpu\.shares: 1 is not/);
  assert.throws(() => limitsToFiles(v1, { cpu: { shares: 2, weight: 1 } }), /cpu\.weight: give/);
  assert.throws(() => limitsToFiles(v1, { memory: { limit: 1.5 } }), /memory\.limit/);
  assert.throws(
    () => limitsToFiles(v1, { io: { weightDevice: [{ major: 8, minor: 0, weight: 5 }] } }),
    /io\.weightDevice\[0\]\.weight/,
  );
  const noPids = parseMountinfo(UNIFIED_MOUNTINFO, "memory");
  assert.throws(
    () => limitsToFiles(noPids, { pids: { max: 5 } }),
    /pids\.max: this host has no pids controller/,
  );
});

void test("empty limits write nothing", () => {
  assert.deepEqual(limitsToFiles(v1, {}), []);
  assert.deepEqual(limitsToFiles(v2, { memory: {}, cpu: {}, io: {}, pids: {} }), []);
});
