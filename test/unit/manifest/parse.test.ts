import { PERMISSIONS } from "../../../src/protocol/permissions.js";
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  manifestFormatFromPath,
  manifestToYaml,
  ManifestError,
  parseManifest,
  type Manifest,
} from "../../../src/npk/manifest/index.js";
import { assertRejected, BASE } from "./helpers.js";

// Covers every Northstar field, written the way Northstar's own examples and tests write them.
const FULL = `
name: hello
version: 0.0.1
init: /binary
args:
  - one
  - two
env:
  LD_LIBRARY_PATH: /lib
  THREADS: 4
  RATIO: 1.0
uid: 1000
gid: 1001
console:
  permissions: [ident, notifications, inspect, kill, list]
sched:
  policy:
    !other
      nice: 10
suppl_groups: [inet, log]
capabilities:
  - CAP_NET_RAW
  - CAP_MKNOD
rlimits:
  nproc:
    soft: 1000
    hard: 2000
  nofile:
    hard: 100
mounts:
  /dev:
    type: dev
  /proc:
    type: proc
  /sys:
    type: sysfs
  /tmp:
    type: tmpfs
    size: 10MB
  /lib:
    type: bind
    host: /lib
    options: rw,nosuid
  /data:
    type: persist
  /run/sockets:
    type: sockets
  /resource:
    type: resource
    name: bla-blah.foo
    version: '>=1.0.0'
    dir: /bin/foo
    options: noexec
autostart: critical
network: !namespace container
seccomp:
  profile: default
  allow:
    fork: any
    personality: !args
      index: 0
      values: [0, 8]
    clone: !args
      index: 0
      mask: 255
sockets:
  foo:
    type: stream
    mode: 0o600
    uid: 100
    gid: 1000
    passcred: true
  bar:
    type: seq_packet
    mode: 0o660
selinux:
  mount_context: unconfined_u:object_r:user_home_t:s0
cgroups:
  parent: cpu-intense
  memory:
    oom_monitor: true
    memory_hard_limit: 1000000
    swappiness: 0
    attrs: {}
  cpu:
    cpus: 0,1
    shares: 1024
  blkio:
    weight: 100
    throttle_read_bps_device:
      - major: 8
        minor: 0
        rate: 1000
io:
  stdout: pipe
  stderr: discard
custom:
  blah: foo
  list: [1, two]
`;

void describe("parseManifest (YAML)", () => {
  void it("reads every Northstar field into Northstar's JSON form", () => {
    const m = parseManifest(FULL);
    assert.equal(m.name, "hello");
    assert.deepEqual(m.args, ["one", "two"]);
    // serde_yaml reads plain scalars verbatim into string fields
    assert.deepEqual(m.env, { LD_LIBRARY_PATH: "/lib", THREADS: "4", RATIO: "1.0" });
    assert.deepEqual(m.console, { permissions: ["ident", "notifications", "inspect", "kill", "list"] });
    assert.deepEqual(m.sched, { policy: { other: { nice: 10 } } });
    assert.deepEqual(m.rlimits, { nproc: { soft: 1000, hard: 2000 }, nofile: { soft: null, hard: 100 } });
    assert.deepEqual(m.mounts!["/tmp"], { type: "tmpfs", size: 10_000_000 });
    assert.deepEqual(m.mounts!["/lib"], { type: "bind", host: "/lib", options: "rw,nosuid" });
    assert.deepEqual(m.mounts!["/data"], { type: "persist" });
    assert.deepEqual(m.mounts!["/run/sockets"], { type: "sockets" });
    assert.deepEqual(m.mounts!["/resource"], {
      type: "resource",
      name: "bla-blah.foo",
      version: ">=1.0.0",
      dir: "/bin/foo",
      options: "noexec",
    });
    assert.deepEqual(m.network, { namespace: "container" });
    assert.deepEqual(m.seccomp, {
      profile: "default",
      allow: {
        fork: "any",
        personality: { args: { index: 0, values: [0, 8] } },
        clone: { args: { index: 0, mask: 255 } },
      },
    });
    assert.deepEqual(m.sockets!.foo, { type: "stream", mode: 0o600, uid: 100, gid: 1000, passcred: true });
    assert.deepEqual(m.selinux, { mount_context: "unconfined_u:object_r:user_home_t:s0", exec: null });
    assert.deepEqual(m.cgroups!.memory, { oom_monitor: true, memory_hard_limit: 1000000, swappiness: 0 });
    assert.deepEqual(m.cgroups!.cpu, { cpus: "0,1", shares: 1024 });
    assert.deepEqual(m.cgroups!.blkio, {
      weight: 100,
      weight_device: [],
      throttle_read_bps_device: [{ major: 8, minor: 0, rate: 1000 }],
      throttle_read_iops_device: [],
      throttle_write_bps_device: [],
      throttle_write_iops_device: [],
    });
    assert.deepEqual(m.io, { stdout: "pipe", stderr: "discard" });
    assert.deepEqual(m.custom, { blah: "foo", list: [1, "two"] });
  });

  void it("serializes keys in Northstar's field order", () => {
    const keys = Object.keys(parseManifest(FULL));
    const order = ["name", "version", "console", "init", "args", "env", "uid", "gid", "sched", "mounts"];
    assert.deepEqual(
      keys.filter((k) => order.includes(k)),
      order,
    );
    assert.ok(keys.indexOf("io") > keys.indexOf("sockets") && keys.indexOf("custom") > keys.indexOf("io"));
  });

  void it("reads a resource container and the minimal manifest", () => {
    const m = parseManifest("name: message\nversion: 0.0.2\nuid: 1000\ngid: 1000\n");
    assert.deepEqual(m, { name: "message", version: "0.0.2", uid: 1000, gid: 1000 });
  });

  void it("reads unit variants and the remaining tagged variants", () => {
    assert.equal(parseManifest(BASE + "network: host\n").network, "host");
    assert.deepEqual(parseManifest(BASE + "sched:\n  policy: idle\n").sched, { policy: "idle" });
    assert.deepEqual(parseManifest(BASE + "sched:\n  policy: !idle\n").sched, { policy: "idle" });
    const fifo = parseManifest(BASE + "sched:\n  policy:\n    !fifo\n      priority: 10\n");
    assert.deepEqual(fifo.sched, { policy: { fifo: { priority: 10 } } });
    const batch = parseManifest(BASE + "sched:\n  policy: !batch { nice: -5 }\n");
    assert.deepEqual(batch.sched, { policy: { batch: { nice: -5 } } });
    // The externally tagged map form is accepted too.
    assert.deepEqual(parseManifest(BASE + "network:\n  namespace: foo\n").network, { namespace: "foo" });
  });

  void it("accepts mounts written as tags", () => {
    const m = parseManifest(
      BASE +
        "mounts:\n  /data: !persist\n  /lib: !bind { host: /lib, options: nodev }\n  /tmp: !tmpfs { size: 1kB }\n",
    );
    assert.deepEqual(m.mounts, {
      "/data": { type: "persist" },
      "/lib": { type: "bind", host: "/lib", options: "nodev" },
      "/tmp": { type: "tmpfs", size: 1000 },
    });
    assertRejected(BASE + "mounts:\n  /x: !overlay {}\n", "mounts./x.type");
  });

  void it("normalizes the version and writes a complete console permission set as full", () => {
    assert.equal(parseManifest(BASE.replace("0.0.1", "1.2.3-rc.1+build")).version, "1.2.3");
    // Every console permission, Skiff's additions included (Northstar's fifteen alone stay a list).
    const all = `[${PERMISSIONS.join(", ")}]`;
    assert.deepEqual(parseManifest(BASE + `console:\n  permissions: ${all}\n`).console, {
      permissions: "full",
    });
    assert.deepEqual(parseManifest(BASE + "console:\n  permissions: full\n").console, {
      permissions: "full",
    });
  });

  void it("accepts tmpfs sizes as bytes or with decimal and binary units", () => {
    const size = (s: string) => {
      const m = parseManifest(BASE + `mounts:\n  /tmp:\n    type: tmpfs\n    size: ${s}\n`);
      return (m.mounts!["/tmp"] as { size: number }).size;
    };
    assert.equal(size("42"), 42);
    assert.equal(size("100kB"), 100_000);
    assert.equal(size("100MB"), 100_000_000);
    assert.equal(size("100GB"), 100_000_000_000);
    assert.equal(size("64KiB"), 65_536);
    assert.equal(size("1 MiB"), 1_048_576);
    assertRejected(
      BASE + "mounts:\n  /tmp:\n    type: tmpfs\n    size: 10 parsecs\n",
      "mounts./tmp.size",
      /invalid size/,
    );
  });

  void it("omits empty collections like Northstar's serializer", () => {
    const m = parseManifest(BASE + "args: []\nenv: {}\nmounts: {}\ncapabilities: []\n");
    assert.deepEqual(Object.keys(m), ["name", "version", "init", "uid", "gid"]);
  });

  void it("rejects syntax errors, duplicate keys and wrong types with paths", () => {
    assertRejected("name: [", "", /yaml syntax/);
    assertRejected(BASE + "mounts:\n  /dev:\n    type: dev\n  /dev:\n    type: dev\n", "", /unique/i);
    assertRejected(BASE.replace("uid: 1000", "uid: abc"), "uid", /expected an integer/);
    assertRejected(BASE.replace("uid: 1000", "uid: 70000"), "uid", /between 0 and 65535/);
    assertRejected(BASE + "autostart: sometimes\n", "autostart", /relaxed, critical/);
    assertRejected(BASE + "capabilities: [CAP_FLY]\n", "capabilities.0");
    assertRejected(BASE + "capabilities: [CAP_KILL, CAP_KILL]\n", "capabilities.1", /duplicate/);
    assertRejected(BASE + "suppl_groups: [a, a]\n", "suppl_groups.1", /duplicate/);
    assertRejected(BASE + "rlimits:\n  wishes:\n    soft: 3\n", "rlimits.wishes");
    assertRejected(BASE + "sockets:\n  s:\n    type: pipe\n    mode: 0\n", "sockets.s.type");
    assertRejected(BASE + "network: !bridge br0\n", "network", /host/);
    assertRejected(BASE + "mounts:\n  /x:\n    type: bind\n", "mounts./x.host", /missing/);
    assertRejected(BASE + "mounts:\n  /x:\n    type: overlay\n", "mounts./x.type");
    assertRejected(
      BASE + "mounts:\n  /x:\n    type: bind\n    host: /x\n    options: rw,sync\n",
      "mounts./x.options",
    );
    assertRejected(BASE + "io:\n  stdout: pipe\n", "io.stderr", /missing/);
    assertRejected("name: x\nversion: 1\nuid: 1\ngid: 1\n", "version", /semantic version/);
  });

  void it("rejects unknown fields at every level", () => {
    assertRejected(BASE + "colour: blue\n", "colour", /unknown field/);
    assertRejected(
      BASE + "mounts:\n  /p:\n    type: persist\n    size: 3\n",
      "mounts./p.size",
      /unknown field/,
    );
    assertRejected(BASE + "selinux:\n  unknown: x\n", "selinux.unknown", /unknown field/);
    assertRejected(BASE + "cgroups:\n  pids:\n    max: 3\n    min: 1\n", "cgroups.pids.min");
    assertRejected(
      BASE + "seccomp:\n  allow:\n    read: !args { index: 0, mask: 1, op: eq }\n",
      "seccomp.allow.read.args.op",
    );
  });

  void it("ignores unknown keys in cgroups and sched, as Northstar's serde does", () => {
    const m = parseManifest(
      BASE +
        "cgroups:\n  colour: blue\n  memory:\n    limit_in_bytes: 3\n    memory_hard_limit: 10\n" +
        "  cpu:\n    weight: 5\n    shares: 100\n" +
        "  blkio:\n    x: 1\n    weight_device:\n      - { major: 8, minor: 0, weight: 10, extra: 1 }\n" +
        "sched:\n  flavour: fast\n  policy: !other { nice: 3, extra: 1 }\n",
    );
    assert.deepEqual(m.cgroups!.memory, { oom_monitor: false, memory_hard_limit: 10 });
    assert.deepEqual(m.cgroups!.cpu, { shares: 100 });
    assert.deepEqual(m.cgroups!.blkio!.weight_device, [{ major: 8, minor: 0, weight: 10 }]);
    assert.equal("colour" in m.cgroups!, false);
    assert.deepEqual(m.sched, { policy: { other: { nice: 3 } } });
  });

  void it("reports every problem at once", () => {
    try {
      parseManifest(BASE + "colour: blue\nautostart: maybe\n");
      assert.fail("expected an error");
    } catch (error) {
      assert.ok(error instanceof ManifestError);
      assert.deepEqual(error.errors.map((e) => e.path).sort(), ["autostart", "colour"]);
      assert.match(error.message, /2 problems/);
      assert.match(error.message, /colour: unknown field/);
    }
  });
});

void describe("parseManifest (JSON and TOML)", () => {
  void it("reads the JSON form it produces", () => {
    const m = parseManifest(FULL);
    assert.deepEqual(parseManifest(JSON.stringify(m), "json"), m);
  });

  void it("reads TOML", () => {
    const toml = `
name = "hello"
version = "0.0.1"
init = "/binary"
uid = 1000
gid = 1001
args = ["one"]
network = { namespace = "container" }
[sched.policy.other]
nice = 5
[mounts."/data"]
type = "persist"
[mounts."/lib"]
type = "bind"
host = "/lib"
options = "nodev"
[seccomp.allow]
read = "any"
[seccomp.allow.personality.args]
index = 0
values = [0]
`;
    const m = parseManifest(toml, "toml");
    assert.deepEqual(m.sched, { policy: { other: { nice: 5 } } });
    assert.deepEqual(m.network, { namespace: "container" });
    assert.deepEqual(m.mounts, {
      "/data": { type: "persist" },
      "/lib": { type: "bind", host: "/lib", options: "nodev" },
    });
    assert.deepEqual(m.seccomp, { allow: { read: "any", personality: { args: { index: 0, values: [0] } } } });
  });

  void it("rejects malformed JSON and TOML", () => {
    assertRejected("{", "", /json syntax/, "json");
    assertRejected("name = ", "", /toml syntax/, "toml");
  });

  void it("picks the format from the file extension", () => {
    assert.equal(manifestFormatFromPath("/a/manifest.yaml"), "yaml");
    assert.equal(manifestFormatFromPath("manifest.YML"), "yaml");
    assert.equal(manifestFormatFromPath("m.json"), "json");
    assert.equal(manifestFormatFromPath("m.toml"), "toml");
    assert.throws(() => manifestFormatFromPath("manifest.txt"), /\.yaml/);
  });
});

void describe("manifestToYaml", () => {
  void it("round-trips and writes enum variants as tags", () => {
    const m: Manifest = parseManifest(FULL);
    const yaml = manifestToYaml(m);
    assert.match(yaml, /network: !namespace container/);
    assert.match(yaml, /policy: !other/);
    assert.match(yaml, /personality: !args/);
    assert.deepEqual(parseManifest(yaml), m);
  });
});
