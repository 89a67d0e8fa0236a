import { test } from "node:test";
import assert from "node:assert/strict";
import { parseMountinfo } from "../../../src/daemon/cgroups/layout.js";
import {
  allDirs,
  containerCgroupPath,
  controllerDir,
  hierarchyDir,
  validateCgroupName,
} from "../../../src/daemon/cgroups/paths.js";
import { HYBRID_MOUNTINFO } from "./fixtures.js";

void test("container and group paths are absolute below the root", () => {
  assert.equal(containerCgroupPath("skiff", "hello"), "/skiff/hello");
  assert.equal(containerCgroupPath("skiff", "hello", "media"), "/skiff/media/hello");
});

void test("names with slashes, dots or control-file prefixes are rejected with the field name", () => {
  assert.throws(() => validateCgroupName("a/b", "container"), /^Error: container: "a\/b"/);
  assert.throws(() => validateCgroupName("..", "group"), /group/);
  assert.throws(() => validateCgroupName("memory.limit_in_bytes", "container"), /collide/);
  assert.throws(() => validateCgroupName("", "cgroup"), /cgroup/);
  validateCgroupName("hello-world_1.0", "container");
});

void test("directories are built from the mount roots", () => {
  const layout = parseMountinfo(HYBRID_MOUNTINFO);
  assert.equal(controllerDir(layout, "memory", "/skiff/a"), "/sys/fs/cgroup/memory/skiff/a");
  assert.equal(controllerDir(layout, "io", "/skiff/a"), undefined);
  assert.equal(hierarchyDir("/sys/fs/cgroup/pids", "/"), "/sys/fs/cgroup/pids");
  assert.throws(() => hierarchyDir("/sys/fs/cgroup/pids", "skiff"), /absolute/);
  assert.throws(() => hierarchyDir("/sys/fs/cgroup/pids", "/skiff/../x"), /\.\./);
  assert.equal(allDirs(layout, "/skiff").length, 10);
});
