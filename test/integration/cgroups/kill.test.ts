import { test } from "node:test";
import assert from "node:assert/strict";
import { setupTestCgroups } from "./helpers.js";
import { killCgroup } from "../../../src/daemon/cgroups/kill.js";
import { Freezer } from "../../../src/daemon/power/freezer.js";
import { waitFor } from "../../helpers/wait.js";

async function waitForProcs(read: () => Promise<number[]>, count: number): Promise<void> {
  let seen: number[] = [];
  await waitFor(async () => (seen = await read()).length >= count, {
    timeoutMs: 20_000,
    what: `${count} processes in the cgroup`,
    detail: () => `seen: ${seen.join(", ")}`,
  });
}

void test("killing a cgroup ends all its processes, including ones forked inside it", async () => {
  const cgroups = await setupTestCgroups();
  const { tree, layout } = cgroups;
  try {
    const path = await cgroups.create("victims");
    const forker = cgroups.spawnHeld("sleep 1000 & sleep 1000 & wait");
    const sleeper = cgroups.spawnHeld("exec sleep 1000");
    await tree.attach(path, forker.pid);
    await tree.attach(path, sleeper.pid);
    forker.release();
    await waitForProcs(() => tree.procs(path), 4);

    await killCgroup(layout, path, { timeoutMs: 5000 });
    assert.deepEqual(await tree.procs(path), []);
    assert.deepEqual(await forker.exited, [null, "SIGKILL"]);
    assert.deepEqual(await sleeper.exited, [null, "SIGKILL"]);
  } finally {
    await cgroups.cleanup();
  }
});

void test("killing a frozen cgroup completes", async () => {
  const cgroups = await setupTestCgroups();
  const { tree, layout } = cgroups;
  try {
    const path = await cgroups.create("frozen");
    const held = cgroups.spawnHeld("exec sleep 1000");
    await tree.attach(path, held.pid);
    const freezer = new Freezer(layout);
    await freezer.freeze(path, { timeoutMs: 2000 });
    assert.equal(await freezer.state(path), "frozen");

    await killCgroup(layout, path, { timeoutMs: 5000 });
    assert.deepEqual(await tree.procs(path), []);
    assert.deepEqual(await held.exited, [null, "SIGKILL"]);
    assert.equal(await freezer.state(path), "thawed");
  } finally {
    await cgroups.cleanup();
  }
});

void test("killing an empty or missing cgroup is a no-op", async () => {
  const cgroups = await setupTestCgroups();
  try {
    await killCgroup(cgroups.layout, await cgroups.create("empty"));
    await killCgroup(cgroups.layout, `${cgroups.tree.rootPath}/never-created`);
  } finally {
    await cgroups.cleanup();
  }
});
