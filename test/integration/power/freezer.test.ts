import { test } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { setupTestCgroups } from "../cgroups/helpers.js";
import { readStats } from "../../../src/daemon/cgroups/cgroup-stats.js";
import { killCgroup } from "../../../src/daemon/cgroups/kill.js";
import { FreezeError, Freezer, freezerKind } from "../../../src/daemon/power/freezer.js";
import { waitFor } from "../../helpers/wait.js";

// The development host is hybrid (v1 freezer); the VM lane's guest (SKIFF_VM=1) is pure v2.
const expectedFreezer = process.env.SKIFF_VM === "1" ? "v2" : "v1";

void test(`this host uses the ${expectedFreezer} freezer`, async () => {
  const cgroups = await setupTestCgroups();
  try {
    assert.equal(freezerKind(cgroups.layout), expectedFreezer);
  } finally {
    await cgroups.cleanup();
  }
});

void test("a frozen busy loop uses no cpu; thawed it runs again", async () => {
  const cgroups = await setupTestCgroups();
  const { tree, layout } = cgroups;
  try {
    const path = await cgroups.create("busy");
    const held = cgroups.spawnHeld("while :; do :; done");
    await tree.attach(path, held.pid);
    held.release();
    const usage = (): number => readStats(layout, path).cpu!.usageNs;
    const freezer = new Freezer(layout);
    let seenInProgress = false;
    await freezer.freeze(path, { timeoutMs: 2000, onIntermediate: () => void (seenInProgress = true) });
    assert.equal(seenInProgress, true);
    assert.equal(await freezer.state(path), "frozen");

    const frozenUsage = usage();
    await sleep(200);
    assert.equal(usage(), frozenUsage);

    await freezer.thaw(path);
    assert.equal(await freezer.state(path), "thawed");
    await waitFor(() => usage() !== frozenUsage, {
      timeoutMs: 20_000,
      what: "the thawed busy loop to use CPU again",
    });
    assert.equal(held.child.exitCode, null);
  } finally {
    await cgroups.cleanup();
  }
});

void test("a freeze that does not complete in time fails and leaves the cgroup thawed", async () => {
  const cgroups = await setupTestCgroups();
  const { tree, layout } = cgroups;
  try {
    const path = await cgroups.create("slow");
    const held = cgroups.spawnHeld("exec sleep 1000");
    await tree.attach(path, held.pid);
    const freezer = new Freezer(layout);
    // The hook holds the freeze "in progress" past its deadline: completion is then seen too late.
    await assert.rejects(
      freezer.freeze(path, { timeoutMs: 10, onIntermediate: () => sleep(50) }),
      (error: unknown) => error instanceof FreezeError && /not frozen within 10 ms/.test(error.message),
    );
    assert.equal(await freezer.state(path), "thawed");

    // A hook that fails (e.g. a lock that cannot be taken) also rolls back.
    await assert.rejects(
      freezer.freeze(path, {
        timeoutMs: 2000,
        onIntermediate: () => {
          throw new Error("lock refused");
        },
      }),
      /lock refused/,
    );
    assert.equal(await freezer.state(path), "thawed");

    const abort = new AbortController();
    await assert.rejects(
      freezer.freeze(path, { timeoutMs: 2000, signal: abort.signal, onIntermediate: () => abort.abort() }),
      { name: "AbortError" },
    );
    assert.equal(await freezer.state(path), "thawed");
  } finally {
    await cgroups.cleanup();
  }
});

void test("the cgroup2 freezer (this host's unified hierarchy) freezes, thaws and lets a frozen cgroup be killed", async () => {
  const cgroups = await setupTestCgroups();
  const { tree, layout } = cgroups;
  try {
    // The same host seen without its v1 freezer: Freezer then drives cgroup.freeze on the unified hierarchy.
    const controllers = new Map(layout.controllers);
    controllers.delete("freezer");
    const v2Layout = { ...layout, controllers };
    const freezer = new Freezer(v2Layout);
    assert.equal(freezer.kind, "v2");

    const path = await cgroups.create("v2");
    const held = cgroups.spawnHeld("while :; do :; done");
    await tree.attach(path, held.pid);
    held.release();
    await freezer.freeze(path, { timeoutMs: 2000 });
    assert.equal(await freezer.state(path), "frozen");
    const frozenUsage = readStats(layout, path).cpu!.usageNs;
    await sleep(200);
    assert.equal(readStats(layout, path).cpu!.usageNs, frozenUsage);
    await freezer.thaw(path);
    assert.equal(await freezer.state(path), "thawed");

    await freezer.freeze(path, { timeoutMs: 2000 });
    await killCgroup(v2Layout, path, { timeoutMs: 5000 });
    assert.deepEqual(await held.exited, [null, "SIGKILL"]);
    await freezer.thaw(path);
  } finally {
    await cgroups.cleanup();
  }
});
