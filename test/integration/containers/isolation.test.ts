/**
 * The isolation a manifest asks for, seen from inside real containers started by a real skiffd:
 * each container prints what it sees and the test reads its log after the exit.
 */
import assert from "node:assert/strict";
import { chmod, copyFile, mkdir, readFile, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { ExitStatus } from "../../../src/protocol/messages.js";
import { ContainerHarness } from "../../helpers/containers.js";
import { nameOf } from "../../../src/protocol/container.js";

/** Capability numbers (linux/capability.h) of the ones granted below. */
const CAP_KILL = 5;
const CAP_NET_BIND_SERVICE = 10;
const CAP_CHECKPOINT_RESTORE = 40;

/**
 * What busybox `sh -c`, `grep`, `linux32`/`linux64` and `echo` call as uid 1000 beyond what Skiff
 * always allows (seccomp.ts): found with strace and the kernel audit log of SIGSYS kills. Busybox
 * drops set-id privileges with setgid/setuid at every exec.
 */
const BUSYBOX_SYSCALLS = [
  "getppid",
  "getuid",
  "getgid",
  "setuid",
  "setgid",
  "prctl",
  "newfstatat",
  "getpid",
  "getcwd",
];
const PER_LINUX = 0;

/** pid, ppid, pgrp and session from a `/proc/<pid>/stat` line (the fields around the command name). */
function statFields(line: string): { pid: number; ppid: number; pgrp: number; session: number } {
  const pid = Number(line.slice(0, line.indexOf(" ")));
  const [, ppid, pgrp, session] = line.slice(line.lastIndexOf(")") + 2).split(" ");
  return { pid, ppid: Number(ppid), pgrp: Number(pgrp), session: Number(session) };
}

/** Interface names from /proc/net/dev text. */
function interfaces(procNetDev: string): string[] {
  return procNetDev
    .split("\n")
    .slice(2)
    .map((l) => l.split(":")[0]!.trim())
    .filter((name) => name !== "")
    .sort();
}

/** `ls -l` lines of /proc/self/fd as fd → link target ("" when gone before ls read the link). */
function fdTargets(lines: string[]): Map<number, string> {
  const fds = new Map<number, string>();
  for (const line of lines) {
    const m = / (\d+)(?: -> (.*))?$/.exec(line);
    if (m) fds.set(Number(m[1]), m[2] ?? "");
  }
  return fds;
}

describe("isolation inside containers started by skiffd", () => {
  let h: ContainerHarness;
  const ids: Record<string, string> = {};
  const add = async (base: string, script: string, extra = ""): Promise<void> => {
    ids[base] = await h.add(h.name(base), "/bin/sh", ["-c", script], extra);
  };
  /** Starts a container (with overrides, if any), waits for its exit and returns it with its stdout. */
  const run = async (
    base: string,
    overrides?: Parameters<ContainerHarness["client"]["start"]>[1],
  ): Promise<{ status: ExitStatus; out: string[] }> => {
    const id = ids[base]!;
    const from = h.notifications.length;
    const logFrom = (await h.logLines(id).catch(() => [])).length;
    await h.client.start(id, overrides);
    const status = await h.waitForExit(id, from);
    const out = (await h.logLines(id))
      .slice(logFrom)
      .filter((l) => l.startsWith("stdout "))
      .map((l) => l.slice("stdout ".length));
    return { status, out };
  };
  const exited = (code: number): ExitStatus => ({ type: "exit", code, reason: "shutdown" });

  before(async () => {
    h = await ContainerHarness.create();
    // This harness's image gets an /etc/group, for a supplementary group resolved by name.
    await mkdir(join(h.dir, "busybox", "etc"));
    await writeFile(join(h.dir, "busybox", "etc", "group"), "skiffers:x:4242:\n");
    const share = join(h.dir, "share");
    await mkdir(share);
    await chmod(share, 0o777); // writable for the container's uid through the rw mount
    await copyFile("/bin/busybox", join(share, "busybox"));
    await writeFile(join(share, "hello"), "from the host\n");

    await add("ids", "id -u; id -g; id -G", 'suppl_groups: [skiffers, "20", no-such-group]\n');
    await add("stat", "exec cat /proc/self/stat /proc/1/stat");
    await add(
      "caps",
      "grep ^Cap /proc/self/status",
      "capabilities: [CAP_KILL, CAP_NET_BIND_SERVICE, CAP_CHECKPOINT_RESTORE]\n",
    );
    await add("nocaps", "grep ^Cap /proc/self/status");
    await add(
      "rlimits",
      "ulimit -Sn; ulimit -Hn; ulimit -Ss; ulimit -Hs; ulimit -Hc; ulimit -Sx; ulimit -Hx",
      "rlimits:\n  nofile: { soft: 100, hard: 200 }\n  stack: { soft: 1048576, hard: 2097152 }\n  core: {}\n  locks: { hard: 50 }\n",
    );
    // The extra YAML continues the harness's `mounts:` map.
    await add(
      "mounts",
      [
        "echo x > /proc/self/comm || echo proc-write-failed",
        "grep -E ' /(proc|ro|rw|flags) ' /proc/self/mounts",
        "cat /ro/hello",
        "touch /ro/new || echo ro-write-failed",
        "touch /rw/new && echo rw-write-ok",
        "/rw/busybox true && echo rw-exec-ok",
        "/flags/busybox true || echo flags-exec-failed",
      ].join("; "),
      `  /ro:\n    type: bind\n    host: ${share}\n` +
        `  /rw:\n    type: bind\n    host: ${share}\n    options: rw\n` +
        `  /flags:\n    type: bind\n    host: ${share}\n    options: nosuid,nodev,noexec\n`,
    );
    const allow = BUSYBOX_SYSCALLS.map((s) => `    ${s}: any\n`).join("");
    await add(
      "seccomp",
      "grep ^Seccomp: /proc/self/status; linux64 echo allowed; exec linux32 echo forbidden",
      `seccomp:\n  allow:\n${allow}    personality: !args { index: 0, values: [${PER_LINUX}] }\n`,
    );
    await add("fds", "exec ls -l /proc/self/fd");
    await add(
      "sockfds",
      "exec ls -l /proc/self/fd",
      "sockets:\n  one:\n    type: stream\n    mode: 0o600\n  two:\n    type: stream\n    mode: 0o600\n",
    );
    await add("env", "exec env", "env:\n  FROM_MANIFEST: manifest\n");
    await add("netns", "cat /proc/net/dev");
    await add("hostnet", "cat /proc/net/dev", "network: host\n");
    await h.startDaemon();
  });
  after(() => h.close());

  it("runs as the manifest's uid and gid with its supplementary groups", async () => {
    const { status, out } = await run("ids");
    assert.deepEqual(status, exited(0));
    const [uid, gid, groups] = out;
    assert.equal(uid, "1000");
    assert.equal(gid, "1000");
    // skiffers from the image's /etc/group, 20 taken as a number, the unknown name skipped.
    assert.deepEqual(
      groups!
        .split(" ")
        .filter((g) => g !== gid)
        .sort(),
      ["20", "4242"],
    );
    assert.match(h.log, /suppl_groups: unknown group no-such-group; skipped/);
  });

  it("the app's parent is the container's init (pid 1) and it shares the init's session", async () => {
    const { status, out } = await run("stat");
    assert.deepEqual(status, exited(0));
    const [self, init] = out.map(statFields);
    assert.equal(init!.pid, 1);
    assert.equal(self!.ppid, 1);
    assert.equal(self!.session, init!.session);
    assert.equal(init!.session, 1, "the init leads its own session");
  });

  it("has exactly the listed capabilities in every set, and none without a list", async () => {
    const granted = (
      (1n << BigInt(CAP_KILL)) |
      (1n << BigInt(CAP_NET_BIND_SERVICE)) |
      (1n << BigInt(CAP_CHECKPOINT_RESTORE))
    )
      .toString(16)
      .padStart(16, "0");
    const sets = ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"];
    const caps = await run("caps");
    assert.deepEqual(caps.status, exited(0));
    assert.deepEqual(
      caps.out,
      sets.map((s) => `${s}:\t${granted}`),
    );
    const none = await run("nocaps");
    assert.deepEqual(none.status, exited(0));
    assert.deepEqual(
      none.out,
      sets.map((s) => `${s}:\t${"0".repeat(16)}`),
    );
  });

  it("has the manifest's rlimits; no values is unlimited, a hard limit alone is also the soft one", async () => {
    const { status, out } = await run("rlimits");
    assert.deepEqual(status, exited(0));
    assert.deepEqual(out, ["100", "200", "1024", "2048", "unlimited", "50", "50"]);
  });

  it("mounts /proc read-only and bind mounts read-only unless rw, with the flags given", async () => {
    const { status, out } = await run("mounts");
    assert.deepEqual(status, exited(0));
    assert.ok(out.includes("proc-write-failed"), out.join("\n"));
    const options = (target: string): string[] => {
      const line = out.find((l) => l.split(" ")[1] === target);
      assert.ok(line, `${target} is mounted:\n${out.join("\n")}`);
      return line.split(" ")[3]!.split(",");
    };
    assert.ok(options("/proc").includes("ro"));
    assert.ok(options("/ro").includes("ro"));
    assert.ok(options("/rw").includes("rw"));
    for (const flag of ["ro", "nosuid", "nodev", "noexec"]) assert.ok(options("/flags").includes(flag), flag);
    for (const flag of ["nosuid", "nodev", "noexec"]) assert.ok(!options("/rw").includes(flag), flag);
    for (const line of [
      "from the host",
      "ro-write-failed",
      "rw-write-ok",
      "rw-exec-ok",
      "flags-exec-failed",
    ]) {
      assert.ok(out.includes(line), `${line} in:\n${out.join("\n")}`);
    }
    const created = await readdir(join(h.dir, "share"));
    assert.ok(created.includes("new"), "the rw mount wrote to the host directory");
  });

  it("seccomp: an allowed argument passes, a forbidden one kills the app with SIGSYS", async () => {
    const { status, out } = await run("seccomp");
    assert.deepEqual(out, ["Seccomp:\t2", "allowed"], "a filter is in place (mode 2)");
    assert.deepEqual(status, { type: "signalled", signal: 31, reason: "shutdown" });
  });

  it("sees only stdio, and the manifest's sockets as fds 4 and up", async () => {
    const plain = await run("fds");
    assert.deepEqual(plain.status, exited(0));
    const fds = fdTargets(plain.out);
    assert.deepEqual([...fds.keys()].sort(), [0, 1, 2, 3]);
    assert.equal(fds.get(0), "/dev/null");
    assert.match(fds.get(1)!, /^pipe:/);
    assert.match(fds.get(2)!, /^pipe:/);
    // fd 3 is ls's own handle of the directory, closed before it reads the links.
    assert.equal(fds.get(3), "");

    const withSockets = await run("sockfds");
    assert.deepEqual(withSockets.status, exited(0));
    const sockFds = fdTargets(withSockets.out);
    assert.deepEqual([...sockFds.keys()].sort(), [0, 1, 2, 3, 4, 5]);
    assert.match(sockFds.get(4)!, /^socket:\[\d+\]$/);
    assert.match(sockFds.get(5)!, /^socket:\[\d+\]$/);
    assert.notEqual(sockFds.get(4), sockFds.get(5));
  });

  it("gets the runtime variables and the manifest's env; a start's overrides replace init, args and env", async () => {
    const id = ids.env!;
    const name = nameOf(id);
    const runtimeVars = [`NAME=${name}`, "VERSION=1.0.0", `CONTAINER=${id}`].flatMap((v) => [
      `NORTHSTAR_${v}`,
      `SKIFF_${v}`,
    ]);
    const plain = await run("env");
    assert.deepEqual(plain.status, exited(0));
    for (const v of [...runtimeVars, "FROM_MANIFEST=manifest"]) assert.ok(plain.out.includes(v), v);
    assert.ok(
      !plain.out.some((l) => /^(NORTHSTAR|SKIFF)_CONSOLE=/.test(l)),
      "no console, no console variable",
    );

    const overridden = await run("env", {
      init: "<INIT>",
      arguments: ["-c", "echo overridden by $0; exec env"],
      environment: { FROM_START: "start" },
    });
    assert.deepEqual(overridden.status, exited(0));
    assert.equal(overridden.out[0], "overridden by /bin/sh");
    for (const v of [...runtimeVars, "FROM_START=start"]) assert.ok(overridden.out.includes(v), v);
    assert.ok(
      !overridden.out.includes("FROM_MANIFEST=manifest"),
      "the start's environment replaces the manifest's",
    );

    const otherInit = await run("env", { init: "/bin/echo", arguments: ["instead"] });
    assert.deepEqual(otherInit.status, exited(0));
    assert.deepEqual(otherInit.out, ["instead"]);
  });

  it("has its own empty network namespace by default, the host's with network: host", async () => {
    const own = await run("netns");
    assert.deepEqual(own.status, exited(0));
    assert.deepEqual(interfaces(own.out.join("\n")), ["lo"]);
    // Other work on this machine may add or remove interfaces meanwhile: the container sees every
    // interface the host had throughout, and none it never had.
    const hostBefore = interfaces(await readFile("/proc/net/dev", "utf8"));
    const host = await run("hostnet");
    const hostAfter = interfaces(await readFile("/proc/net/dev", "utf8"));
    assert.deepEqual(host.status, exited(0));
    const seen = interfaces(host.out.join("\n"));
    assert.ok(
      seen.some((name) => name !== "lo"),
      `the host's interfaces: ${seen.join(" ")}`,
    );
    for (const name of hostBefore.filter((n) => hostAfter.includes(n))) assert.ok(seen.includes(name), name);
    for (const name of seen) assert.ok(hostBefore.includes(name) || hostAfter.includes(name), name);
  });
});
