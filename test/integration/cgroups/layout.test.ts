import { test } from "node:test";
import assert from "node:assert/strict";
import { access } from "node:fs/promises";
import { detectLayout } from "../../../src/daemon/cgroups/layout.js";

void test("this host is hybrid: v1 controllers and a cgroup2 mount", async () => {
  const layout = await detectLayout();
  assert.equal(layout.kind, "hybrid");
  assert.equal(layout.unified, "/sys/fs/cgroup/unified");
  for (const controller of ["blkio", "cpu", "cpuacct", "cpuset", "devices", "freezer", "memory", "pids"]) {
    assert.deepEqual(layout.controllers.get(controller), {
      version: 1,
      mount: `/sys/fs/cgroup/${controller}`,
    });
  }
  for (const mount of layout.hierarchies) await access(`${mount}/cgroup.procs`);
});
