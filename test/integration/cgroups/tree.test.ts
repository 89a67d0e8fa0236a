import { test } from "node:test";
import assert from "node:assert/strict";
import { access, readFile } from "node:fs/promises";
import { setupTestCgroups } from "./helpers.js";
import { allDirs } from "../../../src/daemon/cgroups/paths.js";

void test("root, group and container cgroups exist on every hierarchy and are removed after exit", async () => {
  const cgroups = await setupTestCgroups();
  const { tree, layout } = cgroups;
  try {
    for (const dir of allDirs(layout, tree.rootPath)) await access(dir);
    const group = await tree.createGroup("media");
    const path = tree.containerPath("player", "media");
    assert.equal(path, `${tree.rootPath}/media/player`);
    await tree.create(path);
    // A new v1 cpuset inherits cpus and mems, else no task could join it; on v2 an empty
    // cpuset.cpus means the parent's, so the effective set is what must not be empty.
    const cpuset = layout.controllers.get("cpuset")!;
    const cpus = cpuset.version === 1 ? "cpuset.cpus" : "cpuset.cpus.effective";
    assert.notEqual((await readFile(`${cpuset.mount}${path}/${cpus}`, "utf8")).trim(), "");

    const held = cgroups.spawnHeld("sleep 1000");
    await tree.attach(path, held.pid);
    assert.deepEqual(await tree.procs(path), [held.pid]);
    await assert.rejects(tree.remove(path, { timeoutMs: 50 }), /still has tasks or child cgroups/);
    await assert.rejects(tree.removeRoot({ timeoutMs: 50 }), /still has tasks or child cgroups/);

    held.child.kill("SIGKILL");
    await held.exited;
    await tree.removeContainer("player", "media");
    await tree.removeGroup("media");
    for (const dir of [...allDirs(layout, path), ...allDirs(layout, group)]) {
      await assert.rejects(access(dir), { code: "ENOENT" });
    }
  } finally {
    await cgroups.cleanup();
  }
  for (const dir of allDirs(layout, tree.rootPath)) await assert.rejects(access(dir), { code: "ENOENT" });
});
