import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  initialPower,
  initialState,
  withContainer,
  type ContainerRecord,
  type RuntimeState,
} from "../../../src/daemon/state/model.js";
import {
  freezeDone,
  pauseRequest,
  resumeRequest,
  suspendRequest,
  thawDone,
  wakeFired,
  RESUME_REASON_NO_SOURCES,
} from "../../../src/daemon/state/power.js";
import {
  lockAcquire,
  proxyDropped,
  proxyMessages,
  proxyOpened,
  sourceAdd,
  sourceRemove,
} from "../../../src/daemon/state/wake.js";
import type { Step } from "../../../src/daemon/events/steps.js";
import type { InstalledPackage } from "../../../src/daemon/repository/repository.js";
import type { Npk } from "../../../src/npk/npk.js";
import type { Response } from "../../../src/protocol/messages.js";

const C = "svc:1.0.0";

function runningState(): RuntimeState {
  const npk = {
    path: "/x.npk",
    manifest: { name: "svc", version: "1.0.0", init: "/bin/sh" },
  } as unknown as Npk;
  const pkg: InstalledPackage = { repository: "r", npk, size: 1 };
  const record: ContainerRecord = {
    id: C,
    pkg,
    process: {
      phase: "running",
      pid: 42,
      startedAt: 0,
      startedBy: "request",
      overrides: { init: null, arguments: [], environment: {} },
      resources: [],
      stopReplies: [],
      stopRequested: false,
      power: initialPower(0),
    },
  };
  return withContainer(initialState([]), record);
}

/** Collects replies so tests can read what each request was answered. */
function replies(): { reply: (r: Response) => void; got: Response[] } {
  const got: Response[] = [];
  return { reply: (r) => void got.push(r), got };
}

const types = (steps: Step[]): string[] =>
  steps.map((s) =>
    s.type === "notify"
      ? `notify:${s.notification.type === "power" ? s.notification.state : s.notification.type}`
      : s.type,
  );
const power = (s: RuntimeState) => s.containers.get(C)!.process!.power;

function run(steps: Step[]): void {
  for (const s of steps) if (s.type === "reply_to") s.reply(s.response);
}

describe("power transitions", () => {
  it("no wake sources: a suspend returns at once", () => {
    const r = replies();
    const t = suspendRequest(runningState(), C, undefined, r.reply, 1000);
    run(t.steps);
    assert.deepEqual(r.got, [
      {
        type: "suspend",
        result: { type: "ok", container: C, suspend_time: 0, resume_reason: RESUME_REASON_NO_SOURCES },
      },
    ]);
  });

  it("a held wake lock refuses the suspend without freezing", () => {
    const r = replies();
    let s = lockAcquire(
      runningState(),
      { type: "wake_lock_acquire", container: C, name: "l" },
      "host",
      () => undefined,
      0,
    ).state;
    s = sourceAdd(s, C, "t", { type: "timer", after_ms: 100 }, undefined).state;
    const t = suspendRequest(s, C, undefined, r.reply, 0);
    run(t.steps);
    assert.ok(!types(t.steps).includes("freeze"));
    assert.match(JSON.stringify(r.got), /wake_locks_exist/);
  });

  it("a lock taken during the freeze thaws and fails with wake_locks_exist", () => {
    const r = replies();
    let s = sourceAdd(runningState(), C, "t", { type: "timer", after_ms: 100 }, undefined).state;
    const t1 = suspendRequest(s, C, undefined, r.reply, 0);
    assert.deepEqual(types(t1.steps), ["freeze"]);
    s = lockAcquire(
      t1.state,
      { type: "wake_lock_acquire", container: C, name: "l" },
      "host",
      () => undefined,
      1,
    ).state;
    const t2 = freezeDone(s, C, undefined, 2);
    assert.deepEqual(types(t2.steps), ["thaw"]);
    const t3 = thawDone(t2.state, C, 3);
    run(t3.steps);
    assert.match(JSON.stringify(r.got), /wake_locks_exist/);
    assert.equal(power(t3.state).state, "awake");
    assert.ok(!types([...t2.steps, ...t3.steps]).includes("notify:asleep"));
  });

  it("suspend, a source fires, thaw: ok with the reason, asleep then awake", () => {
    const r = replies();
    let s = sourceAdd(runningState(), C, "a", { type: "timer", after_ms: 1 }, undefined).state;
    s = sourceAdd(s, C, "b", { type: "timer", after_ms: 1 }, undefined).state;
    s = suspendRequest(s, C, undefined, r.reply, 0).state;
    const frozen = freezeDone(s, C, undefined, 1000);
    assert.deepEqual(types(frozen.steps), ["notify:asleep"]);
    let t = wakeFired(frozen.state, C, "b");
    assert.deepEqual(types(t.steps), ["thaw", "cancel_power_timer"]);
    t = wakeFired(t.state, C, "a");
    const done = thawDone(t.state, C, 1250);
    run(done.steps);
    assert.deepEqual(types(done.steps), ["notify:awake", "reply_to"]);
    assert.deepEqual(r.got[0], {
      type: "suspend",
      result: { type: "ok", container: C, suspend_time: 250_000_000, resume_reason: "a,b" },
    });
  });

  it("a removed source no longer wakes the container", () => {
    let s = sourceAdd(runningState(), C, "a", { type: "timer", after_ms: 1 }, undefined).state;
    s = sourceAdd(s, C, "keep", { type: "timer", after_ms: 1 }, undefined).state;
    s = suspendRequest(s, C, undefined, () => undefined, 0).state;
    s = freezeDone(s, C, undefined, 1).state;
    s = sourceRemove(s, C, "a", () => undefined).state;
    const t = wakeFired(s, C, "a");
    assert.deepEqual(t.steps, []);
    assert.equal(power(t.state).state, "asleep");
  });

  it("proxy traffic counts, wakes, and a counter above zero makes the next suspend return at once", () => {
    let s = proxyOpened(runningState(), C, "http", undefined).state;
    s = suspendRequest(s, C, undefined, () => undefined, 0).state;
    s = freezeDone(s, C, undefined, 1).state;
    const woke = proxyMessages(s, C, "http", 3, 2);
    assert.equal(power(woke.state).counters.http, 3);
    assert.deepEqual(types(woke.steps), ["thaw", "cancel_power_timer"]);
    const awake = thawDone(woke.state, C, 3).state;
    const r = replies();
    const again = suspendRequest(awake, C, undefined, r.reply, 4);
    run(again.steps);
    assert.deepEqual(types(again.steps), ["notify:asleep", "notify:awake", "reply_to"]);
    assert.match(JSON.stringify(r.got), /"resume_reason":"http"/);
  });

  it("dropped proxy messages come off the counter: they do not keep a suspend from sleeping", () => {
    let s = proxyOpened(runningState(), C, "http", undefined).state;
    s = proxyMessages(s, C, "http", 2, 1).state;
    s = proxyDropped(s, C, "http", 2).state;
    assert.equal(power(s).counters.http, 0);
    const t = suspendRequest(s, C, 60_000, () => undefined, 2);
    assert.deepEqual(types(t.steps), ["freeze"]);
    assert.equal(proxyDropped(s, C, "http", 5).state.containers.get(C)!.process!.power.counters.http, 0);
  });

  it("suspends are served one at a time, in order, each with its own answer", () => {
    const first = replies();
    const second = replies();
    let s = sourceAdd(runningState(), C, "t", { type: "timer", after_ms: 1 }, undefined).state;
    const t1 = suspendRequest(s, C, undefined, first.reply, 0);
    const t2 = suspendRequest(t1.state, C, undefined, second.reply, 0);
    assert.deepEqual(t2.steps, []);
    s = freezeDone(t2.state, C, undefined, 1).state;
    s = wakeFired(s, C, "t").state;
    const done = thawDone(s, C, 2);
    run(done.steps);
    assert.equal(first.got.length, 1);
    assert.equal(second.got.length, 0);
    assert.ok(types(done.steps).includes("freeze"), "the second suspend begins");
  });

  it("pause twice is a no-op success; resume of a running container is an error", () => {
    const r = replies();
    const t1 = pauseRequest(runningState(), C, r.reply);
    assert.deepEqual(types(t1.steps), ["freeze"]);
    const t2 = freezeDone(t1.state, C, undefined, 1);
    run(t2.steps);
    const t3 = pauseRequest(t2.state, C, r.reply);
    run(t3.steps);
    assert.deepEqual(r.got, [
      { type: "pause", result: { type: "ok", container: C } },
      { type: "pause", result: { type: "ok", container: C } },
    ]);
    const e = replies();
    run(resumeRequest(runningState(), C, e.reply).steps);
    assert.match(JSON.stringify(e.got), /not paused/);
  });

  it("a failed freeze is suspend_failure", () => {
    const r = replies();
    let s = sourceAdd(runningState(), C, "t", { type: "timer", after_ms: 1 }, undefined).state;
    s = suspendRequest(s, C, undefined, r.reply, 0).state;
    run(freezeDone(s, C, "freeze timed out", 1).steps);
    assert.match(JSON.stringify(r.got), /suspend_failure/);
  });
});
