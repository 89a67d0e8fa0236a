import { test } from "node:test";
import assert from "node:assert/strict";
import { toProcessStatistics } from "../../../src/daemon/cgroups/process-statistics.js";

void test("process.statistics: snake_case, null for unlimited or unknown, absent sections omitted", () => {
  const statistics = toProcessStatistics({
    memory: {
      usage: 4096,
      peak: undefined,
      limit: null,
      anon: 1024,
      file: 2048,
      swap: 0,
      pgfault: 7,
      pgmajfault: 1,
      stat: { total_rss: 1024, total_cache: 2048 },
    },
    cpu: { usageNs: 5_000_000, periods: 10, throttledPeriods: 2, throttledNs: 300 },
    pids: { current: 3, limit: 64 },
    io: undefined,
  });
  assert.deepEqual(statistics, {
    memory: {
      usage: 4096,
      peak: null,
      limit: null,
      anon: 1024,
      file: 2048,
      swap: 0,
      stat: { total_rss: 1024, total_cache: 2048 },
    },
    cpu: { usage_ns: 5_000_000, periods: 10, throttled_periods: 2, throttled_ns: 300 },
    pids: { current: 3, limit: 64 },
  });
  assert.deepEqual(JSON.parse(JSON.stringify(statistics)), statistics);
  assert.deepEqual(
    toProcessStatistics({ memory: undefined, cpu: undefined, pids: undefined, io: undefined }),
    {},
  );
});
