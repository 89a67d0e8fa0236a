/**
 * MonitorLauncher (src/daemon/monitor/launcher.ts) and skiff-launcher on their own, with plain
 * commands in place of skiff-monitor: what the spawned process gets (session, fds, environment,
 * cgroup), its ready line and exit, refusals, and the launcher's loss.
 */
import assert from "node:assert/strict";
import { closeSync, openSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { MonitorLauncher } from "../../../src/daemon/monitor/launcher.js";
import { waitFor } from "../../helpers/wait.js";

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function statOf(pid: number): Promise<{ ppid: number; session: number }> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return { ppid: Number(fields[1]), session: Number(fields[3]) };
}

describe("skiff-launcher", () => {
  let dir: string;
  const lost: string[] = [];
  const launcher = new MonitorLauncher((reason) => lost.push(reason));
  const started: number[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "skiff-launcher-"));
    // Before the launcher starts (at the first launch): it inherits the daemon's environment.
    process.env.SKIFF_LAUNCHER_TEST = "from-the-daemon";
  });
  after(async () => {
    for (const pid of started) if (alive(pid)) process.kill(pid, "SIGKILL");
    launcher.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("spawns in its own session, as its child, with fd 0 /dev/null, fd 2 the log, the daemon's environment and cgroup", async () => {
    const log = join(dir, "spawn.log");
    const p = await launcher.launch(
      [
        "/bin/sh",
        "-c",
        'readlink /proc/$$/fd/0 >&2; echo "env=$SKIFF_LAUNCHER_TEST" >&2; cat /proc/$$/cgroup >&2; echo ready; exec sleep 100',
      ],
      [],
      log,
    );
    started.push(p.pid);
    await p.ready;
    const { ppid, session } = await statOf(p.pid);
    assert.equal(ppid, launcher.pid);
    assert.equal(session, p.pid);
    const text = await readFile(log, "utf8");
    assert.match(text, /^\/dev\/null$/m);
    assert.match(text, /^env=from-the-daemon$/m);
    assert.ok(text.includes(await readFile("/proc/self/cgroup", "utf8")), "the daemon's cgroup");
    process.kill(p.pid, "SIGTERM");
    await p.exited;
    // Reaped by the launcher: no zombie is left.
    await waitFor(() => !alive(p.pid), { timeoutMs: 5000, what: "the process to be reaped" });
  });

  it("passes the daemon's fds at 3, 4, ...; an ignored place stays closed", async () => {
    const log = join(dir, "fds.log");
    const file = join(dir, "passed");
    const fd = openSync(file, "w");
    try {
      const p = await launcher.launch(
        [
          "/bin/sh",
          "-c",
          'readlink /proc/$$/fd/3 /proc/$$/fd/5 >&2; [ -e /proc/$$/fd/4 ] || echo "4 closed" >&2; [ -e /proc/$$/fd/6 ] || echo "6 closed" >&2; echo ready',
        ],
        [fd, "ignore", fd],
        log,
      );
      started.push(p.pid);
      await p.ready;
      await p.exited;
    } finally {
      closeSync(fd);
    }
    assert.deepEqual((await readFile(log, "utf8")).trim().split("\n"), [file, file, "4 closed", "6 closed"]);
  });

  it("an exit before the ready line rejects it with the exit code", async () => {
    const p = await launcher.launch(["/bin/sh", "-c", "exit 3"], [], join(dir, "exit.log"));
    await assert.rejects(p.ready, /exited before it was ready \(code 3, signal 0\)/);
    await p.exited;
  });

  it("refuses what cannot be started: a missing program, an fd the daemon does not have", async () => {
    await assert.rejects(launcher.launch([join(dir, "missing")], [], join(dir, "m.log")), /ENOENT/);
    await assert.rejects(launcher.launch(["/bin/true"], [1_000_000], join(dir, "m.log")), /EBADF/);
  });

  it("runs a tool to its end: exit code, signal, stdout and stderr", async () => {
    assert.deepEqual(await launcher.run(["/bin/sh", "-c", "echo out; echo err >&2; exit 4"]), {
      code: 4,
      signal: null,
      stdout: "out\n",
      stderr: "err\n",
    });
    assert.deepEqual(await launcher.run(["/bin/sh", "-c", "kill -TERM $$"]), {
      code: null,
      signal: "SIGTERM",
      stdout: "",
      stderr: "",
    });
    await assert.rejects(launcher.run([join(dir, "missing")]), { code: "ENOENT" });
    const aborted = new AbortController();
    const running = launcher.run(["/bin/sleep", "100"], aborted.signal);
    setImmediate(() => aborted.abort(new Error("enough")));
    await assert.rejects(running, /enough/);
  });

  it("killed -9: what it spawned keeps running, the loss is reported, the next launch starts a new one", async () => {
    const p = await launcher.launch(["/bin/sh", "-c", "echo ready; exec sleep 100"], [], join(dir, "k.log"));
    started.push(p.pid);
    await p.ready;
    const old = launcher.pid!;
    process.kill(old, "SIGKILL");
    await waitFor(() => lost.length > 0, { timeoutMs: 5000, what: "the loss to be reported" });
    assert.match(lost[0]!, new RegExp(`skiff-launcher \\(pid ${old}\\) was killed by SIGKILL`));
    assert.ok(alive(p.pid), "the spawned process survives");
    const q = await launcher.launch(["/bin/sh", "-c", "echo ready"], [], join(dir, "k2.log"));
    await q.ready;
    assert.notEqual(launcher.pid, old);
    // The orphan's end is still seen (it is init's child now).
    process.kill(p.pid, "SIGKILL");
    await p.exited;
  });
});
