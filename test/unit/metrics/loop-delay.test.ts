import { test } from "node:test";
import assert from "node:assert/strict";
import { LoopDelayWindows } from "../../../src/daemon/metrics/loop-delay.js";

const MS = 1e6;

void test("LoopDelayWindows: nothing recorded reads NaN quantiles, zero count, sum and max", () => {
  const d = new LoopDelayWindows(10).read();
  assert.equal(d.count, 0);
  assert.equal(d.sumSeconds, 0);
  assert.ok(Number.isNaN(d.p50Seconds) && Number.isNaN(d.p99Seconds));
  assert.equal(d.maxSeconds, 0);
  assert.equal(d.recentMaxSeconds, 0);
  assert.equal(d.resolutionSeconds, 0.01);
});

void test("LoopDelayWindows: a stall stays in the max for good and in the recent max for two windows", () => {
  const w = new LoopDelayWindows(10);
  for (let i = 0; i < 99; i++) w.record(10 * MS);
  w.record(250 * MS);
  let d = w.read();
  assert.equal(d.count, 100);
  assert.ok(Math.abs(d.maxSeconds - 0.25) < 0.001);
  assert.ok(Math.abs(d.recentMaxSeconds - 0.25) < 0.001);
  assert.ok(Math.abs(d.p50Seconds - 0.01) < 0.0001);
  assert.ok(Math.abs(d.sumSeconds - (99 * 0.01 + 0.25)) < 0.01);

  w.rotate(); // the stall is in the previous window now
  w.record(12 * MS);
  d = w.read();
  assert.ok(Math.abs(d.recentMaxSeconds - 0.25) < 0.001);
  assert.equal(d.count, 101);

  w.rotate(); // two windows later it is forgotten by the recent max only
  w.record(11 * MS);
  d = w.read();
  assert.ok(Math.abs(d.recentMaxSeconds - 0.012) < 0.0001);
  assert.ok(Math.abs(d.maxSeconds - 0.25) < 0.001);
  assert.equal(d.count, 102);
});

void test("LoopDelayWindows: reading resets nothing", () => {
  const w = new LoopDelayWindows(10);
  w.record(40 * MS);
  assert.deepEqual(w.read(), w.read());
});
