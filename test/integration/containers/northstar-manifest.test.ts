/**
 * Manifest rows that behave as in Northstar 0.9.2, seen in containers started by a real skiffd:
 * `sched` applied to the app, sockets passed sorted by name, `cgroups.*.attrs` written into the
 * container's cgroup (and a bad attr name refused at start).
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { cp, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import type { ExitStatus } from "../../../src/protocol/messages.js";
import { pack } from "../../../src/npk/pack.js";
import { ContainerHarness } from "../../helpers/containers.js";
import { waitFor as waitForCondition } from "../../helpers/wait.js";
import { nameOf } from "../../../src/protocol/container.js";

const MEMORY_V1 = "/sys/fs/cgroup/memory";
const run_ = promisify(execFile);

async function waitUntil(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  await waitForCondition(condition, { timeoutMs, what: "the condition" });
}

describe("Northstar manifest rows in containers started by skiffd", () => {
  let h: ContainerHarness;
  const ids: Record<string, string> = {};
  const add = async (base: string, script: string, extra = ""): Promise<void> => {
    ids[base] = await h.add(h.name(base), "/bin/sh", ["-c", script], extra);
  };
  const exited = (code: number): ExitStatus => ({ type: "exit", code, reason: "shutdown" });
  const run = async (base: string): Promise<{ status: ExitStatus; out: string[] }> => {
    const id = ids[base]!;
    const from = h.notifications.length;
    await h.client.start(id);
    const status = await h.waitForExit(id, from);
    const out = (await h.logLines(id))
      .filter((l) => l.startsWith("stdout "))
      .map((l) => l.slice("stdout ".length));
    return { status, out };
  };

  before(async () => {
    h = await ContainerHarness.create();
    // nice (field 19) and policy (field 41) of the app's own /proc/<pid>/stat.
    await add(
      "sched",
      "exec awk '{ print $19, $41 }' /proc/self/stat",
      "sched:\n  policy: !batch { nice: 6 }\n",
    );
    await add(
      "sockets",
      "env | grep ^NORTHSTAR_SOCKET_ | sort",
      "sockets:\n  zeta:\n    type: stream\n    mode: 0o600\n  alpha:\n    type: stream\n    mode: 0o600\n    passcred: true\n",
    );
    // Prints once its cgroup holds the attr, then waits to be stopped (the test reads the host's file).
    await add(
      "attrs",
      "echo up; exec sleep 60",
      'cgroups:\n  memory:\n    attrs:\n      memory.swappiness: "17"\n',
    );
    await add("parent", "echo up; exec sleep 60", "cgroups:\n  parent: north/star\n");
    await add("selinux", "echo ran", "selinux:\n  mount_context: system_u:object_r:container_file_t:s0\n");
    // Reads one datagram from fd 4 (`dg`, sorted first) and shows what fd 5 (`sp`) is.
    await add(
      "dgram",
      "echo up; head -c 2 <&4; echo; readlink /proc/self/fd/5",
      "sockets:\n  sp:\n    type: seq_packet\n    mode: 0o600\n" +
        "  dg:\n    type: datagram\n    mode: 0o622\n    passcred: true\n",
    );
    // Packed here: the harness's manifests always mount /proc; this one has no `proc` mount at all.
    const noproc = h.name("noproc");
    const args = JSON.stringify([
      "-c",
      "[ -e /proc/self ] && echo proc || echo noproc; echo up; exec sleep 60",
    ]);
    await writeFile(
      join(h.dir, `${noproc}.yaml`),
      `name: ${noproc}\nversion: 1.0.0\ninit: /bin/sh\nargs: ${args}\nuid: 1000\ngid: 1000\n` +
        "mounts:\n  /dev:\n    type: dev\n",
    );
    // runc mounts its /proc on the image's /proc directory (the image is read-only: it must exist).
    await cp(join(h.dir, "busybox"), join(h.dir, "busybox-noproc"), {
      recursive: true,
      verbatimSymlinks: true,
    });
    await mkdir(join(h.dir, "busybox-noproc", "proc"), { recursive: true });
    await pack({
      manifestPath: join(h.dir, `${noproc}.yaml`),
      rootDir: join(h.dir, "busybox-noproc"),
      out: join(h.dir, "repo", `${noproc}-1.0.0.npk`),
      compression: "none",
    });
    ids.noproc = `${noproc}:1.0.0`;
    await add("badattrs", "true", 'cgroups:\n  cpu:\n    attrs:\n      "../../tasks": "1"\n');
    await h.startDaemon();
  });
  after(() => h.close());

  it("applies sched to the app (SCHED_BATCH = 3, nice 6)", async () => {
    const { status, out } = await run("sched");
    assert.deepEqual(status, exited(0));
    assert.deepEqual(out, ["6 3"]);
  });

  it("passes sockets as fds 4, 5, ... sorted by name", async () => {
    const { status, out } = await run("sockets");
    assert.deepEqual(status, exited(0));
    assert.deepEqual(out, ["NORTHSTAR_SOCKET_alpha=4", "NORTHSTAR_SOCKET_zeta=5"]);
  });

  it(
    "writes cgroups attrs into the container's own cgroup",
    { skip: !existsSync(MEMORY_V1) && "memory.swappiness exists in cgroup v1's memory controller only" },
    async () => {
      const id = ids.attrs!;
      const from = h.notifications.length;
      await h.client.start(id);
      await h.waitForLog(id, "up");
      const name = nameOf(id);
      const swappiness = await readFile(join(MEMORY_V1, h.cgroup, name, "memory.swappiness"), "utf8");
      await h.client.kill(id, 15);
      await h.waitForExit(id, from);
      assert.equal(swappiness.trim(), "17");
    },
  );

  it("places a container at its cgroups.parent path below Skiff's cgroup and removes the levels after", async () => {
    const id = ids.parent!;
    const from = h.notifications.length;
    await h.client.start(id);
    await h.waitForLog(id, "up");
    const name = nameOf(id);
    const hierarchy = existsSync(MEMORY_V1) ? MEMORY_V1 : "/sys/fs/cgroup";
    const procs = await readFile(join(hierarchy, h.cgroup, "north", "star", name, "cgroup.procs"), "utf8");
    await h.client.kill(id, 15);
    await h.waitForExit(id, from);
    assert.notEqual(procs.trim(), "");
    await waitUntil(() => !existsSync(join(hierarchy, h.cgroup, "north")));
  });

  it(
    "runs a package with selinux.mount_context where SELinux is off, saying it is not applied",
    { skip: existsSync("/sys/fs/selinux/enforce") && "SELinux is enabled on this host" },
    async () => {
      const { status, out } = await run("selinux");
      assert.deepEqual(status, exited(0));
      assert.deepEqual(out, ["ran"]);
      await h.waitForDaemonLog(/selinux.mount_context: SELinux is not enabled on this host; not applied/);
    },
  );

  it(
    "passes datagram and seq_packet sockets, made with their type, mode and SO_PASSCRED",
    { skip: !existsSync("/usr/bin/python3") && "the host side uses python3 (Node has no such sockets)" },
    async () => {
      const id = ids.dgram!;
      const from = h.notifications.length;
      await h.client.start(id);
      await h.waitForLog(id, "up");
      const dir = join(h.dir, "state", "run", "sockets");
      const host = [
        "import socket, sys, os, stat",
        `d, s = "${dir}/${id}:dg", "${dir}/${id}:sp"`,
        "print(oct(stat.S_IMODE(os.stat(d).st_mode)), oct(stat.S_IMODE(os.stat(s).st_mode)))",
        "c = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET); c.connect(s); print('seqpacket-connected')",
        "socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b'hi', d)",
      ].join("\n");
      const { stdout } = await run_("python3", ["-c", host]);
      assert.deepEqual(stdout.trim().split("\n"), ["0o622 0o600", "seqpacket-connected"]);
      const status = await h.waitForExit(id, from);
      assert.deepEqual(status, exited(0));
      const out = (await h.logLines(id)).filter((l) => l.startsWith("stdout ")).map((l) => l.slice(7));
      assert.equal(out[1], "hi");
      assert.match(out[2]!, /^socket:\[\d+\]$/);
    },
  );

  it("has no /proc without a proc mount, and init's capabilities for unmounting it are gone", async () => {
    const id = ids.noproc!;
    const from = h.notifications.length;
    await h.client.start(id);
    await h.waitForLog(id, "up");
    const name = nameOf(id);
    const hierarchy = existsSync(MEMORY_V1) ? MEMORY_V1 : "/sys/fs/cgroup";
    const pids = (await readFile(join(hierarchy, h.cgroup, name, "cgroup.procs"), "utf8")).trim().split("\n");
    const caps = await Promise.all(
      pids.map(async (pid) =>
        (await readFile(`/proc/${pid}/status`, "utf8")).split("\n").filter((l) => l.startsWith("Cap")),
      ),
    );
    await h.client.kill(id, 15);
    await h.waitForExit(id, from);
    const out = (await h.logLines(id)).filter((l) => l.startsWith("stdout ")).map((l) => l.slice(7));
    assert.equal(out[0], "noproc");
    assert.equal(pids.length, 2); // skiff-init and the app
    for (const lines of caps) {
      assert.deepEqual(
        lines.map((l) => l.split(":")[1]!.trim()),
        ["0000000000000000", "0000000000000000", "0000000000000000", "0000000000000000", "0000000000000000"],
      );
    }
  });

  it("refuses to start a container whose attrs name a file outside its controller", async () => {
    await assert.rejects(h.client.start(ids.badattrs!), /cgroups\.cpu\.attrs\.\.\.\/\.\.\/tasks/);
  });
});
