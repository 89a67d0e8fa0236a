import { test } from "node:test";
import assert from "node:assert/strict";
import { setupTestCgroups } from "./helpers.js";
import { applyLimits } from "../../../src/daemon/cgroups/limits.js";
import {
  readOomKillCount,
  wasOomKilled,
  watchMemoryEvents,
  type MemoryEvent,
} from "../../../src/daemon/cgroups/memory-events.js";

void test("an allocation beyond a 32 MiB limit is OOM-killed and reported as an event", async () => {
  const cgroups = await setupTestCgroups();
  const { tree, layout } = cgroups;
  try {
    const path = await cgroups.create("oom");
    await applyLimits(layout, path, { memory: { limit: 32 * 1024 * 1024 } });
    const baseline = await readOomKillCount(layout, path);
    const events: MemoryEvent[] = [];
    let notify: () => void = () => undefined;
    const oomReported = new Promise<void>((resolve) => (notify = resolve));
    const watcher = await watchMemoryEvents(layout, path, (event) => {
      events.push(event);
      if ((event.oom_kill ?? 0) >= 1) notify();
    });
    try {
      // dd needs a 64 MiB buffer: it is forked inside the cgroup, so every page it touches is charged there.
      const held = cgroups.spawnHeld("dd if=/dev/zero of=/dev/null bs=64M count=1; exit 0");
      await tree.attach(path, held.pid);
      held.release();
      await oomReported;
      assert.ok(events.some((event) => (event.oom_kill ?? 0) >= 1));
      assert.ok(events.every((event) => Object.values(event).every((count) => count > 0)));
      assert.equal(await wasOomKilled(layout, path, baseline), true);
      await held.exited;
    } finally {
      await watcher.stop();
    }
  } finally {
    await cgroups.cleanup();
  }
});

void test("a process that stays within its limit is not reported as OOM-killed", async () => {
  const cgroups = await setupTestCgroups();
  const { tree, layout } = cgroups;
  try {
    const path = await cgroups.create("fits");
    await applyLimits(layout, path, { memory: { limit: 64 * 1024 * 1024 } });
    const held = cgroups.spawnHeld("dd if=/dev/zero of=/dev/null bs=4M count=1");
    await tree.attach(path, held.pid);
    held.release();
    assert.deepEqual(await held.exited, [0, null]);
    assert.equal(await wasOomKilled(layout, path), false);
  } finally {
    await cgroups.cleanup();
  }
});
