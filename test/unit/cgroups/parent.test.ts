import { test } from "node:test";
import assert from "node:assert/strict";
import { parentCgroupPath } from "../../../src/daemon/cgroups/paths.js";

void test("cgroups.parent is a path below Skiff's cgroup, as Northstar places containers", () => {
  assert.equal(parentCgroupPath("skiff", "apps", "hello"), "/skiff/apps/hello");
  assert.equal(parentCgroupPath("skiff", "/apps/rt/", "hello"), "/skiff/apps/rt/hello");
  assert.equal(parentCgroupPath("skiff", "/", "hello"), "/skiff/hello");
});

void test("cgroups.parent cannot leave Skiff's cgroup or collide with control files", () => {
  for (const parent of [
    "..",
    "apps/../..",
    "a//b",
    "./a",
    "a/.",
    "memory.limit_in_bytes",
    "a\0b",
    "cgroup.procs",
  ]) {
    assert.throws(() => parentCgroupPath("skiff", parent, "hello"), /cgroups.parent|path|component/, parent);
  }
});
