import { test } from "node:test";
import assert from "node:assert/strict";
import { access } from "node:fs/promises";
import { detectLayout } from "../../../src/daemon/cgroups/layout.js";

// The development host is hybrid; the VM lane's guest (SKIFF_VM=1, docs/testing.md) is pure v2.
const inVm = process.env.SKIFF_VM === "1";

void test(
  "this host is hybrid: v1 controllers and a cgroup2 mount",
  { skip: inVm && "the VM guest is pure v2" },
  async () => {
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
  },
);

void test(
  "the VM guest is pure v2: every controller on /sys/fs/cgroup",
  { skip: !inVm && "not in the VM lane" },
  async () => {
    const layout = await detectLayout();
    assert.equal(layout.kind, "unified");
    assert.equal(layout.unified, "/sys/fs/cgroup");
    assert.deepEqual(layout.hierarchies, ["/sys/fs/cgroup"]);
    for (const controller of ["cpu", "cpuset", "io", "memory", "pids"]) {
      assert.deepEqual(layout.controllers.get(controller), { version: 2, mount: "/sys/fs/cgroup" });
    }
    await access("/sys/fs/cgroup/cgroup.procs");
  },
);
