import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { buildOciSpec } from "../../../src/daemon/oci/spec.js";
import { BASE, inputFor } from "./fixtures.js";

const resourcesOf = (yaml: string) => buildOciSpec(inputFor(BASE + "cgroups:\n" + yaml));

void describe("buildOciSpec: cgroup resources", () => {
  void it("allows only the minimal device nodes and ptys", () => {
    const { devices } = buildOciSpec(inputFor(BASE)).spec.linux.resources;
    assert.deepEqual(devices[0], { allow: false, access: "rwm" });
    assert.ok(devices.some((d) => d.allow && d.major === 1 && d.minor === 3));
    assert.ok(devices.some((d) => d.allow && d.major === 136 && d.minor === undefined));
  });

  void it("maps memory, cpu and pids", () => {
    const { spec, warnings } = resourcesOf(
      "  memory:\n    oom_monitor: true\n    memory_hard_limit: 10000000\n    memory_soft_limit: 5000000\n" +
        "    memory_swap_limit: 20000000\n    kernel_tcp_memory_limit: 100000\n    swappiness: 0\n" +
        "  cpu:\n    cpus: 0,1\n    mems: '0'\n    shares: 100\n    quota: 50000\n    period: 100000\n" +
        "    realtime_runtime: 1000\n    realtime_period: 10000\n" +
        "  pids:\n    max: 64\n",
    );
    const { memory, cpu, pids } = spec.linux.resources;
    assert.deepEqual(memory, {
      limit: 10000000,
      reservation: 5000000,
      swap: 20000000,
      kernelTCP: 100000,
      swappiness: 0,
    });
    assert.deepEqual(cpu, {
      shares: 100,
      quota: 50000,
      period: 100000,
      realtimeRuntime: 1000,
      realtimePeriod: 10000,
      cpus: "0,1",
      mems: "0",
    });
    assert.deepEqual(pids, { limit: 64 });
    assert.deepEqual(warnings, []);
  });

  void it("maps blkio weights and throttles", () => {
    const { spec } = resourcesOf(
      "  blkio:\n    weight: 500\n    leaf_weight: 300\n    weight_device:\n      - major: 8\n        minor: 0\n        weight: 200\n" +
        "    throttle_read_bps_device:\n      - major: 8\n        minor: 0\n        rate: 1048576\n" +
        "    throttle_write_iops_device:\n      - major: 8\n        minor: 16\n        rate: 100\n",
    );
    assert.deepEqual(spec.linux.resources.blockIO, {
      weight: 500,
      leafWeight: 300,
      weightDevice: [{ major: 8, minor: 0, weight: 200 }],
      throttleReadBpsDevice: [{ major: 8, minor: 0, rate: 1048576 }],
      throttleWriteIOPSDevice: [{ major: 8, minor: 16, rate: 100 }],
    });
  });

  void it("warns about settings with no OCI equivalent", () => {
    const { spec, warnings } = resourcesOf(
      "  memory:\n    kernel_memory_limit: 1000\n    attrs:\n      a: b\n",
    );
    assert.equal(spec.linux.resources.memory, undefined);
    assert.match(warnings.join("\n"), /kernel_memory_limit/);
    assert.match(warnings.join("\n"), /cgroups.memory.attrs/);
  });
});
