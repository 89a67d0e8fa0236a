import assert from "node:assert/strict";
import { createReadStream } from "node:fs";
import { describe, it } from "node:test";
import {
  MAX_SCANNED_LINE,
  StraceScanner,
  scanStrace,
  seccompYaml,
} from "../../../src/cli/commands/strace.js";
import { defaultProfileSyscalls, seccompCommand } from "../../../src/cli/commands/seccomp.js";
import type { CommandContext } from "../../../src/cli/command.js";

const FIXTURE = new URL("../../../../test/fixtures/strace-f.txt", import.meta.url).pathname;

async function* chunks(...parts: string[]): AsyncGenerator<string> {
  for (const part of parts) yield part;
}

async function runSeccomp(...args: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const ctx: CommandContext = {
    global: { url: "unix:///nonexistent", json: false, timeoutMs: 1000 },
    out: (l) => out.push(l),
    err: (l) => err.push(l),
    signal: new AbortController().signal,
  };
  const positionals = args.filter((a) => !a.startsWith("--"));
  const values = Object.fromEntries(args.filter((a) => a.startsWith("--")).map((a) => [a.slice(2), true]));
  const code = await seccompCommand.run(ctx, { positionals, values });
  return { code, out, err };
}

describe("strace logs", () => {
  it("collect every call once, sorted, in all of strace -f's line forms", async () => {
    const summary = await scanStrace(createReadStream(FIXTURE));
    assert.deepEqual(summary.syscalls, [
      "accept4",
      "bind",
      "brk",
      "clone3",
      "close",
      "epoll_wait",
      "execve",
      "exit_group",
      "listen",
      "mmap",
      "newfstatat",
      "openat",
      "read",
      "restart_syscall",
      "rt_sigreturn",
      "set_robust_list",
      "socket",
      "write",
    ]);
    assert.deepEqual(summary.unknown, [{ name: "syscall_0x1c2", line: 18 }]);
  });

  it("ignore resumed calls, signals, exits and strace's messages", () => {
    const scanner = new StraceScanner();
    for (const line of [
      "12  <... read resumed>)  = 1",
      "--- SIGCHLD {si_signo=SIGCHLD} ---",
      "+++ exited with 0 +++",
      "strace: Process 12 attached",
      "",
    ])
      scanner.feed(line);
    assert.deepEqual(scanner.summary(), { syscalls: [], unknown: [], unknownTruncated: false, calls: 0 });
  });

  it("find the name in a line of any length and across chunk borders, holding a bounded prefix", async () => {
    const long = `7 writev(1, "${"x".repeat(MAX_SCANNED_LINE * 3)}", 1) = 1\n`;
    const summary = await scanStrace(
      chunks("7 get", "pid() = 7\n", long.slice(0, 100), long.slice(100), "7 getuid() = 0"),
    );
    assert.deepEqual(summary.syscalls, ["getpid", "getuid", "writev"]);
  });

  it("print a manifest fragment", () => {
    assert.deepEqual(seccompYaml(["brk", "read"]), ["seccomp:", "  allow:", "    brk: any", "    read: any"]);
    assert.deepEqual(seccompYaml([], "default"), ["seccomp:", "  profile: default"]);
  });
});

describe("skiff seccomp", () => {
  it("refuses a log with unknown names and says where they are", async () => {
    const r = await runSeccomp(FIXTURE);
    assert.equal(r.code, 1);
    assert.deepEqual(r.out, []);
    assert.ok(r.err.some((l) => l.endsWith(`strace-f.txt:18: "syscall_0x1c2" is not a Linux system call`)));
  });

  it("prints the allow list with --skip-unknown", async () => {
    const r = await runSeccomp(FIXTURE, "--skip-unknown");
    assert.equal(r.code, 0);
    assert.equal(r.out[0], "seccomp:");
    assert.equal(r.out[1], "  allow:");
    assert.equal(r.out.length, 2 + 18);
    assert.ok(r.out.includes("    clone3: any"));
  });

  it("lists only what Northstar's default profile lacks with --default-profile", async () => {
    const base = defaultProfileSyscalls("x64");
    assert.ok(base.has("read") && base.has("accept4") && !base.has("clone3"));
    const r = await runSeccomp(FIXTURE, "--skip-unknown", "--default-profile");
    assert.equal(r.code, 0);
    assert.deepEqual(r.out.slice(0, 2), ["seccomp:", "  profile: default"]);
    assert.ok(!r.out.includes("    read: any"));
    assert.ok(r.out.includes("    clone3: any"));
  });

  it("fails on a missing file", async () => {
    const r = await runSeccomp("/nonexistent/strace.log");
    assert.equal(r.code, 1);
    assert.match(r.err[0]!, /cannot read/);
  });
});
