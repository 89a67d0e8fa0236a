import { test } from "node:test";
import assert from "node:assert/strict";
import { LoopLiveness, watchdogIntervalMs } from "../../../src/daemon/systemd/watchdog.js";
import { journalPriority } from "../../../src/daemon/logger.js";

test("watchdogIntervalMs: half of WATCHDOG_USEC, only for the process WATCHDOG_PID names", () => {
  assert.equal(watchdogIntervalMs({}, 10), undefined);
  assert.equal(watchdogIntervalMs({ WATCHDOG_USEC: "30000000" }, 10), 15_000);
  assert.equal(watchdogIntervalMs({ WATCHDOG_USEC: "30000000", WATCHDOG_PID: "10" }, 10), 15_000);
  assert.equal(watchdogIntervalMs({ WATCHDOG_USEC: "30000000", WATCHDOG_PID: "11" }, 10), undefined);
  assert.equal(watchdogIntervalMs({ WATCHDOG_USEC: "1" }, 10), 1);
  for (const bad of ["", "0", "-5", "abc", "1e6", "99999999999999999999"]) {
    assert.equal(watchdogIntervalMs({ WATCHDOG_USEC: bad }, 10), undefined, bad);
  }
});

test("LoopLiveness: idle or moving loops are alive; waiting events and no progress are not", () => {
  const live = new LoopLiveness();
  assert.equal(live.tick({ queued: 0, processed: 0 }), true);
  assert.equal(live.tick({ queued: 0, processed: 0 }), true); // idle
  assert.equal(live.tick({ queued: 5, processed: 0 }), true); // work arrived since the last tick
  assert.equal(live.tick({ queued: 5, processed: 3 }), true); // and it moves
  assert.equal(live.tick({ queued: 5, processed: 3 }), false); // waited a whole tick, nothing done
  assert.equal(live.tick({ queued: 6, processed: 3 }), false);
  assert.equal(live.tick({ queued: 0, processed: 9 }), true); // unwedged
});

test("journalPriority maps pino levels to sd-daemon priorities", () => {
  assert.deepEqual([10, 20, 30, 40, 50, 60].map(journalPriority), [7, 7, 6, 4, 3, 2]);
});
