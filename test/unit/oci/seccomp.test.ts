import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  buildOciSpec,
  compileSeccomp,
  RUNC_EXEC_SYSCALLS,
  SKIFF_INIT_SYSCALLS,
  type OciSeccomp,
} from "../../../src/daemon/oci/spec.js";
import { BASE, inputFor } from "./fixtures.js";

const seccompOf = (yaml: string): OciSeccomp => buildOciSpec(inputFor(BASE + yaml)).spec.linux.seccomp!;
const allowedNames = (s: OciSeccomp) =>
  s.syscalls.find((r) => r.action === "SCMP_ACT_ALLOW" && r.args === undefined)!.names;
const argRules = (s: OciSeccomp, name: string) =>
  s.syscalls.filter((r) => r.names.includes(name) && r.args !== undefined);

void describe("compileSeccomp", () => {
  void it("is absent without a seccomp section", () => {
    assert.equal(buildOciSpec(inputFor(BASE)).spec.linux.seccomp, undefined);
  });

  void it("kills the process on anything not allowed, for the native architecture only", () => {
    const s = seccompOf("seccomp:\n  allow:\n    read: any\n");
    assert.equal(s.defaultAction, "SCMP_ACT_KILL_PROCESS");
    assert.deepEqual(s.architectures, ["SCMP_ARCH_X86_64"]);
    assert.deepEqual(compileSeccomp({}, [], "arm64")!.architectures, ["SCMP_ARCH_AARCH64"]);
    assert.throws(() => compileSeccomp({}, [], "mips"), /unsupported architecture/);
  });

  void it("allows the listed syscalls plus what Skiff's init needs", () => {
    const names = allowedNames(seccompOf("seccomp:\n  allow:\n    getuid: any\n"));
    assert.ok(names.includes("getuid"));
    for (const name of [...SKIFF_INIT_SYSCALLS, ...RUNC_EXEC_SYSCALLS]) assert.ok(names.includes(name), name);
    assert.equal(names.includes("mount"), false);
    assert.equal(names.includes("socket"), false);
  });

  void it("compiles value rules to one EQ rule per value and mask rules to MASKED_EQ", () => {
    const s = seccompOf(
      "seccomp:\n  allow:\n    ioctl: !args\n      index: 1\n      values: [21505, 21506]\n      mask: 255\n",
    );
    assert.deepEqual(argRules(s, "ioctl"), [
      { names: ["ioctl"], action: "SCMP_ACT_ALLOW", args: [{ index: 1, value: 21505n, op: "SCMP_CMP_EQ" }] },
      { names: ["ioctl"], action: "SCMP_ACT_ALLOW", args: [{ index: 1, value: 21506n, op: "SCMP_CMP_EQ" }] },
      {
        names: ["ioctl"],
        action: "SCMP_ACT_ALLOW",
        args: [{ index: 1, value: 0xffffffffffffff00n, valueTwo: 0n, op: "SCMP_CMP_MASKED_EQ" }],
      },
    ]);
    assert.equal(allowedNames(s).includes("ioctl"), false);
  });

  void it("allows clone only without namespace flags unless CAP_SYS_ADMIN is granted", () => {
    const plain = seccompOf("seccomp:\n  profile: default\n");
    assert.equal(allowedNames(plain).includes("clone"), false);
    assert.deepEqual(argRules(plain, "clone")[0]!.args, [
      { index: 0, value: 0x7e020000n, valueTwo: 0n, op: "SCMP_CMP_MASKED_EQ" },
    ]);
    const admin = seccompOf("capabilities: [CAP_SYS_ADMIN]\nseccomp:\n  profile: default\n");
    assert.ok(allowedNames(admin).includes("clone"));
    assert.ok(allowedNames(admin).includes("mount"));
    assert.equal(argRules(admin, "clone").length, 0);
  });

  void it("builds Northstar's default profile, extended by capabilities", () => {
    const s = seccompOf("seccomp:\n  profile: default\n");
    const names = allowedNames(s);
    for (const name of ["read", "openat", "socket", "futex", "arch_prctl", "ptrace"])
      assert.ok(names.includes(name), name);
    for (const name of ["mount", "reboot", "chroot", "settimeofday", "init_module", "personality"]) {
      assert.equal(names.includes(name), false, name);
    }
    assert.deepEqual(
      argRules(s, "personality").map((r) => r.args![0]!.value),
      [0n, 8n, 0x20000n, 0x20008n, 0xffffffffn],
    );
    const withCaps = allowedNames(
      seccompOf("capabilities: [CAP_SYS_TIME, CAP_SYS_BOOT]\nseccomp:\n  profile: default\n"),
    );
    assert.ok(withCaps.includes("settimeofday") && withCaps.includes("reboot"));
  });

  void it("answers clone3 with ENOSYS so libc falls back to clone", () => {
    const rule = seccompOf("seccomp:\n  profile: default\n").syscalls.find((r) => r.names.includes("clone3"));
    assert.deepEqual(rule, { names: ["clone3"], action: "SCMP_ACT_ERRNO", errnoRet: 38 });
  });
});
