import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { ConfigError, parseConfig } from "../../../src/daemon/config/load.js";

const FIXTURE = readFileSync(new URL("../../../../test/fixtures/northstar.toml", import.meta.url), "utf8");
const MB = 1000 * 1000;

describe("Northstar's northstar.toml", () => {
  const config = parseConfig(FIXTURE, "northstar.toml", "/srv/ns");

  it("loads unchanged, relative paths taken from the working directory", () => {
    assert.equal(config.runDir, "/srv/ns/target/northstar/run");
    assert.equal(config.dataDir, "/srv/ns/target/northstar/data");
    assert.equal(config.socketDir, "/srv/ns/target/northstar/sockets");
    assert.equal(config.stateDir, "/srv/ns/target/northstar");
    assert.equal(config.logDir, "/srv/ns/target/northstar/log");
    assert.equal(config.cgroup, "northstar");
    assert.equal(config.eventBufferSize, 256);
    assert.equal(config.notificationBufferSize, 64);
  });

  it("maps [console.global] to a listener and [console.options] to container consoles", () => {
    assert.equal(config.listeners.length, 1);
    const global = config.listeners[0]!;
    assert.equal(global.id, "global");
    assert.deepEqual(global.url, { scheme: "tcp", host: "localhost", port: 4200 });
    assert.ok(global.permissions.has("install") && global.permissions.has("token_create"));
    assert.equal(config.containerConsoleOptions.maxRequestsPerSec, 10);
    assert.equal(config.containerConsoleOptions.maxRequestSize, 1024 * 1024);
    assert.equal(config.containerConsoleOptions.maxInstallSize, 100 * MB);
    assert.equal(config.tokenValidityMs, 60_000);
    assert.equal(config.npkStreamTimeoutMs, 5000);
  });

  it("maps both repository types", () => {
    const byId = new Map(config.repositories.map((r) => [r.id, r]));
    assert.deepEqual(byId.get("memory"), {
      id: "memory",
      type: "mem",
      key: "/srv/ns/examples/northstar.pub",
      mountOnStart: false,
      readOnly: false,
      capacityNum: 10,
      capacitySize: 100 * MB,
    });
    const fs = byId.get("default")!;
    assert.equal(fs.type, "fs");
    assert.equal(fs.dir, "/srv/ns/target/northstar/repository");
    assert.equal(fs.mountOnStart, true);
  });

  it("says once what has no meaning here", () => {
    assert.ok(config.notes.some((n) => n.startsWith("loop_device_timeout")));
    assert.ok(config.notes.some((n) => n.includes("relative paths")));
    assert.deepEqual(config.debug.commands, []);
  });

  it("takes debug commands, global console options and the android example's shape", () => {
    const c = parseConfig(
      `run_dir = "/data/northstar/run"
data_dir = "/data/northstar/data"
socket_dir = "/dev/socket/northstar"
cgroup = "northstar"
[console.global]
bind = "unix:///tmp/ns.sock"
permissions = ["list", "ident"]
[console.global.options]
max_npk_install_size = "1MB"
npk_stream_timeout = "2s"
token_validity = "30s"
[debug]
commands = ["strace -c -p <PID>"]
[repositories.system]
key = "/system/etc/northstar/system.pub"
type = { fs = { dir = "/system/northstar/system" }}
`,
      "android",
    );
    assert.equal(c.stateDir, "/data/northstar");
    assert.deepEqual([...c.listeners[0]!.permissions].sort(), ["ident", "list"]);
    assert.equal(c.listeners[0]!.options.maxInstallSize, MB);
    assert.equal(c.npkStreamTimeoutMs, 2000);
    assert.equal(c.tokenValidityMs, 30_000);
    assert.deepEqual(c.debug.commands, ["strace -c -p <PID>"]);
    assert.equal(c.repositories[0]!.dir, "/system/northstar/system");
  });

  it("notes which console's value a daemon-wide key takes", () => {
    const c = parseConfig(`[console.options]
token_validity = "10s"
npk_stream_timeout = "1s"
[console.global]
bind = "tcp://127.0.0.1:4200"
permissions = "full"
options = { token_validity = "20s", npk_stream_timeout = "3s" }
`);
    assert.equal(c.tokenValidityMs, 10_000);
    assert.equal(c.npkStreamTimeoutMs, 3000);
    assert.equal(c.notes.filter((n) => n.includes("daemon-wide")).length, 2);
  });

  it("refuses bad values with Northstar's key path", () => {
    const bad = (text: string, path: string): void =>
      assert.throws(
        () => parseConfig(text, "t"),
        (e: Error) => e instanceof ConfigError && e.message.includes(path),
      );
    bad(`loop_device_timeout = "soon"`, "loop_device_timeout");
    bad(`[console.options]\ntoken_validity = "x"`, "console.options.token_validity");
    bad(`[console.global]\nbind = "http://localhost:4200"\npermissions = "full"`, "console.global.url");
    bad(
      `[console.global]\nbind = "tcp://h:1"\nurl = "tcp://h:1"\npermissions = "full"`,
      "console.global.bind",
    );
    bad(`[repositories.r]\ntype = { fs = { dir = "/r", mode = 1 } }`, "repositories.r.type.fs.mode");
    bad(`[repositories.r]\ntype = { nfs = { dir = "/r" } }`, "repositories.r.type");
    bad(`[console.options]\nmax_npk_install_size = "1M"\nmax_install_size = "1M"`, "max_npk_install_size");
    bad(`[debug]\ncommands = [""]`, "debug.commands[0]");
    bad(`npk_stream_timeout = "0s"`, "npk_stream_timeout");
  });

  it("leaves Skiff's own files alone: relative paths stay refused, a listener named options stays one", () => {
    assert.throws(() => parseConfig(`run_dir = "run"`), /run_dir: must be an absolute path/);
    const c = parseConfig(`[console.options]\nurl = "tcp://127.0.0.1:1"\npermissions = "full"`);
    assert.equal(c.listeners[0]!.id, "options");
    assert.deepEqual(c.notes, []);
    const own = parseConfig(`run_dir = "/run/skiff"\nsocket_dir = "/run/skiff/sockets"`);
    assert.equal(own.stateDir, "/var/lib/skiff", "not taken for a Northstar file");
    assert.equal(own.socketDir, "/run/skiff/sockets");
  });
});
