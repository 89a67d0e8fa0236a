import { test } from "node:test";
import assert from "node:assert/strict";
import { DaemonCounters, renderMetrics } from "../../../src/daemon/metrics/index.js";

const empty = { containers: [], containersByState: {}, eventsProcessed: 0, consoleConnections: 0 };

test("DaemonCounters: OOM kills, suspends, suspend time, wake reasons and start latency", () => {
  const c = new DaemonCounters();
  const last = { suspend_time: 1.5e9, resume_reason: "timer,proxy" };
  c.observeNotification(
    { type: "exit", container: "a:1.0.0", status: { type: "signalled", signal: 9, oom: true } },
    () => undefined,
  );
  c.observeNotification(
    { type: "exit", container: "a:1.0.0", status: { type: "exit", code: 0 } },
    () => undefined,
  );
  c.observeNotification(
    { type: "power", container: "b:1.0.0", state: "asleep", sequence: 1, time_ms: 0 },
    () => last,
  );
  c.observeNotification(
    { type: "power", container: "b:1.0.0", state: "awake", sequence: 2, time_ms: 0 },
    () => last,
  );
  c.startRequested("a:1.0.0", 1000);
  c.startSucceeded("a:1.0.0", 1030); // 0.03 s
  c.startRequested("b:1.0.0", 0);
  c.startFailed("b:1.0.0");
  c.startSucceeded("b:1.0.0", 5); // no pending start: no sample
  const r = c.read();
  assert.deepEqual([...r.oomKills], [["a:1.0.0", 1]]);
  assert.deepEqual([...r.suspends], [["b:1.0.0", 1]]);
  assert.deepEqual([...r.suspendSeconds], [["b:1.0.0", 1.5]]);
  assert.deepEqual(
    [...r.wakes.get("b:1.0.0")!],
    [
      ["timer", 1],
      ["proxy", 1],
    ],
  );
  assert.equal(r.startLatency.count, 1);
  assert.ok(Math.abs(r.startLatency.sum - 0.03) < 1e-9);
  // Cumulative: not in le=0.025, in le=0.05 and every bucket above, and +Inf.
  assert.deepEqual(r.startLatency.buckets, [0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]);

  const text = renderMetrics({ ...empty, counters: r });
  assert.match(text, /^skiff_container_oom_kills_total\{container="a:1.0.0",name="a",version="1.0.0"\} 1$/m);
  assert.match(
    text,
    /^skiff_container_suspend_seconds_total\{container="b:1.0.0",name="b",version="1.0.0"\} 1.5$/m,
  );
  assert.match(
    text,
    /^skiff_container_wakes_total\{container="b:1.0.0",name="b",version="1.0.0",reason="proxy"\} 1$/m,
  );
  assert.match(text, /^# TYPE skiff_container_start_seconds histogram$/m);
  assert.match(text, /^skiff_container_start_seconds_bucket\{le="0.05"\} 1$/m);
  assert.match(text, /^skiff_container_start_seconds_bucket\{le="\+Inf"\} 1$/m);
  assert.match(text, /^skiff_container_start_seconds_count 1$/m);
});

test("without counters the snapshot renders as before (no counter families)", () => {
  assert.doesNotMatch(renderMetrics(empty), /oom_kills|start_seconds/);
});
