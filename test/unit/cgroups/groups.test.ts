import { test } from "node:test";
import assert from "node:assert/strict";
import type { GroupConfig } from "../../../src/daemon/config/schema.js";
import {
  checkLimits,
  groupLimits,
  groupOfManifest,
  limitReachedMessage,
  UnknownGroupError,
} from "../../../src/daemon/cgroups/groups.js";
import { toMemoryNotification } from "../../../src/daemon/cgroups/supervisor.js";

const groups: GroupConfig[] = [
  { name: "gate", memory: 64 * 1024 * 1024, cpuShares: 512, pids: 100, maxContainers: 2 },
  { name: "free", cpuWeight: 50, cpuQuota: 50000, cpuPeriod: 100000 },
];

void test("the group field wins, cgroups.parent counts only when it names a configured group", () => {
  assert.equal(groupOfManifest({ name: "a", group: "gate" }, groups)?.name, "gate");
  assert.equal(
    groupOfManifest({ name: "a", group: "free", cgroups: { parent: "gate" } }, groups)?.name,
    "free",
  );
  assert.equal(groupOfManifest({ name: "a", cgroups: { parent: "gate" } }, groups)?.name, "gate");
  assert.equal(groupOfManifest({ name: "a", cgroups: { parent: "elsewhere" } }, groups), undefined);
  assert.equal(groupOfManifest({ name: "a" }, groups), undefined);
});

void test("an unknown group field is an error naming the container, field and group", () => {
  assert.throws(
    () => groupOfManifest({ name: "hello", group: "nope" }, groups),
    (e: unknown) =>
      e instanceof UnknownGroupError &&
      e.field === "group" &&
      /^hello: group names process group "nope", which is not configured/.test(e.message),
  );
});

void test("group limits become CgroupLimits with only the configured fields", () => {
  assert.deepEqual(groupLimits(groups[0]!), {
    memory: { limit: 64 * 1024 * 1024 },
    cpu: { shares: 512 },
    pids: { max: 100 },
  });
  assert.deepEqual(groupLimits(groups[1]!), { cpu: { weight: 50, quota: 50000, period: 100000 } });
  assert.deepEqual(groupLimits({ name: "none" }), {});
});

void test("checkLimits: below both limits is fine", () => {
  const config = { maxContainers: 10, groups };
  const counts = { running: 9, runningInGroup: new Map([["gate", 1]]) };
  assert.equal(checkLimits(counts, "gate", config), undefined);
  assert.equal(checkLimits(counts, undefined, config), undefined);
  assert.equal(checkLimits(counts, "free", config), undefined); // no group maximum
});

void test("checkLimits: a full group or daemon names its limit; the group's first", () => {
  const config = { maxContainers: 3, groups };
  const groupFull = { running: 2, runningInGroup: new Map([["gate", 2]]) };
  assert.deepEqual(checkLimits(groupFull, "gate", config), { limit: "groups.gate.max_containers", max: 2 });
  assert.equal(checkLimits(groupFull, "free", config), undefined);
  const bothFull = { running: 3, runningInGroup: new Map([["gate", 2]]) };
  assert.deepEqual(checkLimits(bothFull, "gate", config), { limit: "groups.gate.max_containers", max: 2 });
  assert.deepEqual(checkLimits(bothFull, "free", config), { limit: "max_containers", max: 3 });
  assert.deepEqual(checkLimits(bothFull, undefined, config), { limit: "max_containers", max: 3 });
  assert.equal(
    limitReachedMessage({ limit: "max_containers", max: 3 }),
    "limit reached: max_containers allows 3 running containers",
  );
});

void test("memory events become c_group notifications with null for fields that did not move", () => {
  assert.deepEqual(toMemoryNotification({ oom: 1, oom_kill: 1 }), {
    low: null,
    high: null,
    max: null,
    oom: 1,
    oom_kill: 1,
    oom_group_kill: null,
  });
});
