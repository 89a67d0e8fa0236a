import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { spawnMonitor, type MonitorOptions } from "../../../src/daemon/monitor/client.js";

// Rejected before anything is created or spawned: no state directory, no monitor.
const base: MonitorOptions = {
  id: "c",
  bundleDir: "/nonexistent/bundle",
  stateDir: "/nonexistent/state",
  runtime: "/usr/sbin/runc",
  runtimeRoot: "/nonexistent/root",
  io: { stdout: "inherit", stderr: "inherit" },
  log: { maxBytes: 0, files: 0 },
};

describe("spawnMonitor memory options", () => {
  it("rejects a relative memory cgroup", async () => {
    await assert.rejects(
      spawnMonitor({ ...base, memoryCgroup: "memory/c" }),
      /memoryCgroup: "memory\/c" is not absolute/,
    );
  });

  it("rejects a group directory without the container's memory cgroup", async () => {
    await assert.rejects(
      spawnMonitor({ ...base, memoryGroupDir: "/sys/fs/cgroup/memory/g" }),
      /memoryGroupDir needs memoryCgroup/,
    );
  });
});
