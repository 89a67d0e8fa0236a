import { test } from "node:test";
import assert from "node:assert/strict";
import { parseMountinfo } from "../../../src/daemon/cgroups/layout.js";
import { HYBRID_MOUNTINFO, LEGACY_MOUNTINFO, UNIFIED_CONTROLLERS, UNIFIED_MOUNTINFO } from "./fixtures.js";

void test("hybrid: v1 controllers plus a cgroup2 mount without controllers", () => {
  const layout = parseMountinfo(HYBRID_MOUNTINFO, "");
  assert.equal(layout.kind, "hybrid");
  assert.equal(layout.unified, "/sys/fs/cgroup/unified");
  assert.deepEqual(layout.controllers.get("memory"), { version: 1, mount: "/sys/fs/cgroup/memory" });
  assert.deepEqual(layout.controllers.get("freezer"), { version: 1, mount: "/sys/fs/cgroup/freezer" });
  assert.equal(layout.controllers.has("name=systemd"), false);
  assert.equal(layout.hierarchies.length, 10);
  assert.ok(layout.hierarchies.includes("/sys/fs/cgroup/systemd"));
  assert.equal(layout.hierarchies.at(-1), "/sys/fs/cgroup/unified");
});

void test("hybrid: a controller enabled on cgroup2 but not mounted on v1 is a v2 controller", () => {
  const layout = parseMountinfo(HYBRID_MOUNTINFO, "memory io");
  assert.equal(layout.controllers.get("memory")?.version, 1);
  assert.deepEqual(layout.controllers.get("io"), { version: 2, mount: "/sys/fs/cgroup/unified" });
});

void test("legacy: combined cpu,cpuacct mount, no cgroup2, bind mounts ignored", () => {
  const layout = parseMountinfo(LEGACY_MOUNTINFO);
  assert.equal(layout.kind, "legacy");
  assert.equal(layout.unified, undefined);
  assert.equal(layout.controllers.get("cpu")?.mount, "/sys/fs/cgroup/cpu,cpuacct");
  assert.equal(layout.controllers.get("cpuacct")?.mount, "/sys/fs/cgroup/cpu,cpuacct");
  assert.equal(layout.controllers.get("freezer")?.mount, "/sys/fs/cgroup/freezer");
  assert.deepEqual(layout.hierarchies, [
    "/sys/fs/cgroup/systemd",
    "/sys/fs/cgroup/cpu,cpuacct",
    "/sys/fs/cgroup/memory",
    "/sys/fs/cgroup/pids",
    "/sys/fs/cgroup/freezer",
  ]);
});

void test("unified: every controller on the single cgroup2 hierarchy", () => {
  const layout = parseMountinfo(UNIFIED_MOUNTINFO, UNIFIED_CONTROLLERS);
  assert.equal(layout.kind, "unified");
  assert.deepEqual(layout.hierarchies, ["/sys/fs/cgroup"]);
  assert.deepEqual(layout.controllers.get("memory"), { version: 2, mount: "/sys/fs/cgroup" });
  assert.equal(layout.controllers.has("freezer"), false);
});

void test("escaped mount points are decoded", () => {
  const layout = parseMountinfo("41 31 0:38 / /mnt/my\\040cgroups rw - cgroup2 cgroup2 rw\n", "pids");
  assert.equal(layout.unified, "/mnt/my cgroups");
});

void test("no cgroup mounts is an error", () => {
  assert.throws(() => parseMountinfo("22 28 0:21 / /proc rw - proc proc rw\n"), /no cgroup hierarchy/);
});
