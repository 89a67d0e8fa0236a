import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConfigError, EMBEDDED_DEFAULT_CONFIG, parseConfig } from "../../../src/daemon/config/load.js";
import { FULL_PERMISSIONS } from "../../../src/protocol/permissions.js";

describe("config", () => {
  it("embedded default: one unix listener with full permissions, mode 0600", () => {
    const c = parseConfig(EMBEDDED_DEFAULT_CONFIG);
    assert.equal(c.stateDir, "/var/lib/skiff");
    assert.equal(c.runDir, "/var/lib/skiff/run");
    assert.equal(c.cgroup, "skiff");
    assert.equal(c.listeners.length, 1);
    const l = c.listeners[0]!;
    assert.deepEqual(l.url, { scheme: "unix", path: "/run/skiff/skiff.sock" });
    assert.equal(l.permissions, FULL_PERMISSIONS);
    assert.equal(l.mode, 0o600);
    assert.equal(l.options.maxRequestSize, 1024 * 1024);
    assert.equal(l.options.maxConnections, 256);
    assert.equal(l.options.idleTimeoutMs, 5 * 60_000);
    assert.equal(l.options.maxUnreadSize, 1024 * 1024);
    assert.equal(l.options.unreadTimeoutMs, 10_000);
    assert.equal(c.consoleBufferBudget, 64 * 1024 * 1024);
    assert.deepEqual(
      c.repositories.map((r) => [r.id, r.type, r.dir, r.key]),
      [["default", "fs", "/var/lib/skiff/repository", undefined]],
    );
  });

  it("reads listeners, options, repositories and sizes", () => {
    const c = parseConfig(`
      state_dir = "/tmp/s"
      event_buffer_size = 32
      [console.global]
      url = "tcp://127.0.0.1:4200"
      permissions = ["list", "inspect"]
      [console.global.options]
      max_request_size = "64K"
      max_requests_per_sec = 5
      connect_timeout = "250ms"
      max_install_size = "100MB"
      max_connections = 8
      idle_timeout = "1m"
      max_unread_size = "256K"
      unread_timeout = "3s"
      [repositories.default]
      type = "fs"
      dir = "/tmp/repo"
      key = "/tmp/k.pub"
      capacity_num = 10
      capacity_size = "1G"
      [repositories.mem]
      type = "mem"
    `);
    assert.equal(c.dataDir, "/tmp/s/data");
    assert.equal(c.eventBufferSize, 32);
    const l = c.listeners[0]!;
    assert.deepEqual(l.url, { scheme: "tcp", host: "127.0.0.1", port: 4200 });
    assert.deepEqual([...l.permissions], ["list", "inspect"]);
    assert.deepEqual(l.options, {
      maxRequestSize: 65536,
      maxRequestsPerSec: 5,
      connectTimeoutMs: 250,
      maxInstallSize: 100_000_000,
      maxConnections: 8,
      idleTimeoutMs: 60_000,
      maxUnreadSize: 256 * 1024,
      unreadTimeoutMs: 3000,
    });
    assert.equal(c.repositories[0]!.capacitySize, 1024 ** 3);
    assert.equal(c.repositories[1]!.type, "mem");
  });

  const bad: [string, RegExp][] = [
    [`colour = "blue"`, /colour: unknown field/],
    [
      `[console.x]\nurl = "http://x"\npermissions = "full"`,
      /console\.x\.url: expected a unix:\/\/ or tcp:\/\/ URL/,
    ],
    [
      `[console.x]\nurl = "tcp://localhost"\npermissions = "full"`,
      /console\.x\.url: tcp:\/\/ URLs need a host and a port/,
    ],
    [`[console.x]\nurl = "unix://relative"\npermissions = "full"`, /console\.x\.url/],
    [
      `[console.x]\nurl = "unix:///a"\npermissions = ["list", "fly"]`,
      /console\.x\.permissions\[1\]: unknown permission "fly"/,
    ],
    [
      `[console.x]\nurl = "unix:///a"\npermissions = "full"\n[console.x.options]\nmax_request_size = "lots"`,
      /console\.x\.options\.max_request_size: expected a size/,
    ],
    [`[console.x]\nurl = "unix:///a"\npermissions = "full"\nport = 3`, /console\.x\.port: unknown field/],
    [
      `[console.x]\nurl = "unix:///a"\npermissions = "full"\n[console.x.options]\nmax_connections = 0`,
      /console\.x\.options\.max_connections: must be greater than 0/,
    ],
    [`console_buffer_budget = "much"`, /console_buffer_budget: expected a size/],
    [`state_dir = "relative"`, /state_dir: must be an absolute path/],
    [`event_buffer_size = 0`, /event_buffer_size: must be greater than 0/],
    [`cgroup = "a/b"`, /cgroup: must be a single cgroup name/],
    [`cgroup = ".skiff"`, /cgroup: must be a single cgroup name/],
    [`cgroup = "memory.x"`, /cgroup: would collide with a cgroup control file/],
    [`[repositories.r]\ntype = "fs"`, /repositories\.r\.dir: required/],
    [`[repositories.r]\ntype = "zip"`, /repositories\.r\.type: expected one of fs, mem/],
    [`[debug]\nlog_level = "loud"`, /debug\.log_level/],
    [`this is = not toml =`, /invalid TOML: line 1/],
  ];
  for (const [text, reason] of bad) {
    it(`rejects ${text.split("\n").join(" ").slice(0, 60)}`, () => {
      assert.throws(
        () => parseConfig(text),
        (e: unknown) => e instanceof ConfigError && reason.test(e.message),
      );
    });
  }
});
