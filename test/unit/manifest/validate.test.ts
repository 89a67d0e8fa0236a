import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseManifest, validateManifest, ManifestError } from "../../../src/npk/manifest/index.js";
import { assertRejected, BASE } from "./helpers.js";

const mounts = (yaml: string) => BASE + "mounts:\n" + yaml;

void describe("validateManifest: Northstar rules", () => {
  void it("checks the container name charset and length", () => {
    assertRejected(BASE.replace("name: hello", "name: hello world"), "name", /invalid container name/);
    assertRejected(BASE.replace("name: hello", "name: hel/lo"), "name");
    assertRejected(BASE.replace("name: hello", 'name: ""'), "name");
    assertRejected(BASE.replace("name: hello", `name: ${"a".repeat(1025)}`), "name");
    assert.equal(parseManifest(BASE.replace("name: hello", `name: ${"a".repeat(1024)}`)).name.length, 1024);
    assert.equal(parseManifest(BASE.replace("name: hello", "name: A-b_c.9")).name, "A-b_c.9");
  });

  void it("checks uid and gid are at least 1", () => {
    assertRejected(BASE.replace("uid: 1000", "uid: 0"), "uid", /greater than 0/);
    assertRejected(BASE.replace("gid: 1001", "gid: 0"), "gid", /greater than 0/);
  });

  void it("checks init length", () => {
    assertRejected(BASE.replace("init: /binary", 'init: ""'), "init");
    assertRejected(BASE.replace("init: /binary", `init: /${"b".repeat(4096)}`), "init");
  });

  void it("rejects reserved and oversized environment variables", () => {
    for (const name of [
      "NORTHSTAR_NAME",
      "NORTHSTAR_VERSION",
      "NORTHSTAR_CONTAINER",
      "NORTHSTAR_CONSOLE",
      "SKIFF_NAME",
    ]) {
      assertRejected(BASE + `env:\n  ${name}: foo\n`, `env.${name}`, /reserved/);
    }
    assertRejected(BASE + `env:\n  ${"N".repeat(65)}: x\n`, `env.${"N".repeat(65)}`, /name longer/);
    assertRejected(BASE + `env:\n  LONG: ${"v".repeat(1025)}\n`, "env.LONG", /value longer/);
    const many = Array.from({ length: 65 }, (_, i) => `  V${i}: x\n`).join("");
    assertRejected(BASE + "env:\n" + many, "env", /at most 64/);
    assert.equal(parseManifest(BASE + "env:\n  PATH: /bin\n").env!.PATH, "/bin");
  });

  void it("rejects NUL bytes in strings", () => {
    assertRejected(BASE + 'suppl_groups: ["fo\\0o"]\n', "suppl_groups.0", /NUL/);
    assertRejected(BASE + 'args: ["a\\0"]\n', "args.0", /NUL/);
  });

  void it("limits supplementary groups", () => {
    assertRejected(BASE + `suppl_groups: [${"g".repeat(65)}]\n`, "suppl_groups.0", /longer than 64/);
    const many = Array.from({ length: 65 }, (_, i) => `g${i}`).join(", ");
    assertRejected(BASE + `suppl_groups: [${many}]\n`, "suppl_groups", /at most 64/);
  });

  void it("requires absolute, clean, distinct mount points", () => {
    assertRejected(mounts("  data:\n    type: persist\n"), "mounts.data", /absolute/);
    assertRejected(mounts("  /a/../b:\n    type: persist\n"), "mounts./a/../b", /absolute/);
    assertRejected(mounts("  /:\n    type: persist\n"), "mounts./", /must not be \//);
    assertRejected(
      mounts("  /data:\n    type: persist\n  /data/:\n    type: dev\n"),
      "mounts./data/",
      /duplicate/,
    );
    assertRejected(mounts("  /x:\n    type: bind\n    host: lib\n"), "mounts./x.host", /absolute/);
  });

  void it("rejects bind mounts nested in bind mounts, like Northstar", () => {
    const nested = mounts(
      "  /lib/overlapping:\n    type: bind\n    host: /lib\n  /lib/other:\n    type: bind\n    host: /lib\n" +
        "  /lib/overlapping/foo:\n    type: bind\n    host: /lib\n",
    );
    assertRejected(nested, "mounts./lib/overlapping/foo", /overlaps bind mount "\/lib\/overlapping"/);
    const siblings = mounts(
      "  /other_lib1:\n    type: bind\n    host: /lib\n  /lib/a:\n    type: bind\n    host: /lib\n" +
        "  /lib/b:\n    type: bind\n    host: /lib\n",
    );
    assert.equal(Object.keys(parseManifest(siblings).mounts!).length, 3);
    // A prefix that is not a path component is no overlap.
    parseManifest(
      mounts("  /lib:\n    type: bind\n    host: /lib\n  /lib64:\n    type: bind\n    host: /lib64\n"),
    );
  });

  void it("checks resource mounts", () => {
    const resource = (extra: string, dir = "/bin/foo", version = "'>=1.0.0'") =>
      mounts(`  /r:\n    type: resource\n    name: res\n    version: ${version}\n    dir: ${dir}\n${extra}`);
    assertRejected(resource("", "bin/foo"), "mounts./r.dir", /absolute/);
    assertRejected(resource("    options: rec\n"), "mounts./r.options", /recursive/);
    assertRejected(resource("", "/", "'not a version'"), "mounts./r.version", /requirement/);
    parseManifest(resource("    options: rw,noexec,nosuid\n", "/"));
    parseManifest(resource("", "/", "'>=1.0, <2'"));
  });

  void it("applies the resource container rule", () => {
    const resource = "name: res\nversion: 0.0.1\nuid: 1000\ngid: 1000\n";
    for (const [field, yaml] of [
      ["args", "args: [a]\n"],
      ["env", "env:\n  A: b\n"],
      ["autostart", "autostart: relaxed\n"],
      ["cgroups", "cgroups:\n  cpu:\n    shares: 1\n"],
      ["io", "io:\n  stdout: pipe\n  stderr: pipe\n"],
      ["seccomp", "seccomp:\n  profile: default\n"],
      ["capabilities", "capabilities: [CAP_KILL]\n"],
      ["suppl_groups", "suppl_groups: [a]\n"],
      ["restart", "restart:\n  policy: always\n"],
    ] as const) {
      assertRejected(resource + yaml, field, /resource container/);
    }
    // Mounts, rlimits, selinux and so on stay allowed.
    parseManifest(resource + "mounts:\n  /data:\n    type: persist\n");
  });

  void it("checks scheduling parameters, including round_robin (unchecked in Northstar)", () => {
    const sched = (policy: string) => BASE + `sched:\n  policy:\n    ${policy}\n`;
    assertRejected(sched("!other\n      nice: 55"), "sched.policy.other.nice", /-20 and 19/);
    assertRejected(sched("!batch\n      nice: -40"), "sched.policy.batch.nice", /-20 and 19/);
    assertRejected(sched("!fifo\n      priority: 0"), "sched.policy.fifo.priority", /1 and 99/);
    assertRejected(sched("!fifo\n      priority: 200"), "sched.policy.fifo.priority", /1 and 99/);
    assertRejected(sched("!round_robin\n      priority: 0"), "sched.policy.round_robin.priority", /1 and 99/);
    assertRejected(sched("!round_robin\n      priority: 100"), "sched.policy.round_robin.priority");
    // Northstar rejects every round_robin policy; a valid priority must pass.
    assert.deepEqual(parseManifest(sched("!round_robin\n      priority: 10")).sched, {
      policy: { round_robin: { priority: 10 } },
    });
  });

  void it("checks socket uid and gid (unchecked in Northstar)", () => {
    const socket = (extra: string) => BASE + `sockets:\n  foo:\n    type: stream\n    mode: 0o600\n${extra}`;
    assertRejected(socket("    uid: 0\n"), "sockets.foo.uid", /greater than 0/);
    assertRejected(socket("    gid: 0\n"), "sockets.foo.gid", /greater than 0/);
    assertRejected(socket("    mode: 0o17777\n").replace("    mode: 0o600\n", ""), "sockets.foo.mode");
    assertRejected(BASE + "sockets:\n  a=b:\n    type: stream\n    mode: 0\n", "sockets.a=b", /socket name/);
    assert.equal(parseManifest(socket("    uid: 1\n    gid: 1\n")).sockets!.foo!.uid, 1);
  });

  void it("checks seccomp argument rules", () => {
    const rule = (args: string) => BASE + `seccomp:\n  allow:\n    ioctl: !args ${args}\n`;
    assertRejected(rule("{ index: 6, values: [1] }"), "seccomp.allow.ioctl.args.index", /5 or less/);
    assertRejected(rule("{ index: 1 }"), "seccomp.allow.ioctl.args", /values or mask/);
    const values = Array.from({ length: 51 }, (_, i) => i).join(", ");
    assertRejected(
      rule(`{ index: 1, values: [${values}] }`),
      "seccomp.allow.ioctl.args.values",
      /at most 50/,
    );
  });

  void it("checks SELinux contexts and network namespace names", () => {
    assertRejected(BASE + "selinux:\n  mount_context: fo@o\n", "selinux.mount_context", /may only contain/);
    assertRejected(BASE + "selinux:\n  exec: ''\n", "selinux.exec", /empty/);
    assertRejected(BASE + `network: !namespace ${"n".repeat(257)}\n`, "network.namespace", /longer than 256/);
    assertRejected(BASE + "network: !namespace ../etc\n", "network.namespace", /plain file name/);
  });

  void it("checks rlimits and swappiness", () => {
    assertRejected(BASE + "rlimits:\n  nofile:\n    soft: 10\n    hard: 5\n", "rlimits.nofile", /exceeds/);
    assertRejected(BASE + "cgroups:\n  memory:\n    swappiness: 101\n", "cgroups.memory.swappiness");
  });

  void it("can be called on a constructed manifest", () => {
    assert.throws(() => validateManifest({ name: "x", version: "1.0.0", uid: 0, gid: 1 }), ManifestError);
    validateManifest({ name: "x", version: "1.0.0", uid: 1, gid: 1 });
  });
});
