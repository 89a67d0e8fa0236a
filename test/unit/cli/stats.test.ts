import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { statsRow } from "../../../src/cli/commands/stats.js";

describe("skiff stats rows", () => {
  const sample = (usageNs: number, at: number) => ({
    container: "web:1.0.0",
    at,
    statistics: {
      memory: { usage: 3 * 1024 * 1024, limit: 64 * 1024 * 1024 },
      cpu: { usage_ns: usageNs, throttled_periods: 2 },
      pids: { current: 3, limit: null },
      io: { read_bytes: 0, write_bytes: 4096 },
    },
  });

  it("shows memory against its limit, pids, io; CPU only between two samples", () => {
    const first = statsRow(sample(1e9, 1000), undefined);
    assert.equal(first[0], "web:1.0.0");
    assert.equal(first[1], "-");
    assert.match(first[2]!, /MiB \/ .*MiB/);
    assert.equal(first[3], "3");
    assert.equal(first[5], "2");
    // 0.5 s of CPU in 1 s of wall time.
    assert.equal(statsRow(sample(1.5e9, 2000), sample(1e9, 1000))[1], "50.0%");
  });

  it("tolerates missing controllers", () => {
    assert.deepEqual(statsRow({ container: "x:1.0.0", at: 1, statistics: {} }, undefined), [
      "x:1.0.0",
      "-",
      "-",
      "-",
      "-",
      "-",
    ]);
  });
});
