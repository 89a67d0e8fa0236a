import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import { after, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { ContainerHarness } from "../../helpers/containers.js";

/** Pids of every process in a container's cgroup (memory controller), or [] once it is gone. */
async function cgroupPids(h: ContainerHarness, container: string): Promise<number[]> {
  const name = container.slice(0, container.indexOf(":"));
  // The pids controller's hierarchy on a hybrid (v1) host, the unified one on a pure v2 host.
  const text = await readFile(`/sys/fs/cgroup/pids/${h.cgroup}/${name}/cgroup.procs`, "utf8").catch(() =>
    readFile(`/sys/fs/cgroup/${h.cgroup}/${name}/cgroup.procs`, "utf8").catch(() => ""),
  );
  return text.split("\n").filter(Boolean).map(Number);
}

/** The skiff-monitor process supervising the container whose state directory is `stateDir`. */
async function findMonitor(stateDir: string): Promise<number> {
  for (const p of await readdir("/proc")) {
    if (!/^\d+$/.test(p)) continue;
    const cmd = await readFile(`/proc/${p}/cmdline`, "utf8").catch(() => "");
    if (cmd.includes("skiff-monitor") && cmd.split("\0").includes(stateDir)) return Number(p);
  }
  throw new Error(`no monitor for ${stateDir}`);
}

describe("daemon restarts lose nothing", () => {
  const harnesses: ContainerHarness[] = [];
  after(async () => {
    for (const h of harnesses) await h.close();
  });

  it("kill -9 of the daemon with 5 containers running: all re-adopted with the same pids, exits reported once", async () => {
    const h = await ContainerHarness.create();
    harnesses.push(h);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(await h.add(h.name(`svc${i}`), "/bin/sleep", ["1000"]));
    await h.startDaemon();
    for (const id of ids) await h.client.start(id);
    const pids = new Map<string, number>();
    for (const id of ids) pids.set(id, (await h.client.inspect(id)).process!.pid);

    await h.killDaemon();
    await h.startDaemon();
    for (const id of ids) {
      const p = (await h.client.inspect(id)).process;
      assert.equal(p?.pid, pids.get(id), `${id} keeps its init pid`);
    }
    for (const id of ids) {
      const status = await h.client.stop(id);
      assert.deepEqual(status, { type: "signalled", signal: 15, reason: "shutdown" });
    }
    await sleep(200);
    for (const id of ids) assert.equal(h.exitsOf(id).length, 1, `${id}: one exit`);
  });

  it("an exit while the daemon is down is reported exactly once with its code", async () => {
    const h = await ContainerHarness.create();
    harnesses.push(h);
    const id = await h.add(h.name("late"), "/bin/sh", ["-c", "sleep 0.5; exit 42"]);
    await h.startDaemon();
    await h.client.start(id);
    await h.killDaemon();
    await sleep(1000);
    await h.startDaemon();
    assert.deepEqual(await h.waitForExit(id), { type: "exit", code: 42, reason: "shutdown" });
    assert.equal((await h.client.inspect(id)).process, null);
    // Restarting again finds nothing left to report.
    await h.stopDaemon();
    await h.startDaemon();
    await sleep(500);
    assert.equal(h.exitsOf(id).length, 1);
  });

  it("kill -9 of a monitor: an error exit, and no process of the container survives", async () => {
    const h = await ContainerHarness.create();
    harnesses.push(h);
    const id = await h.add(h.name("orphan"), "/bin/sh", ["-c", "sleep 1000 & sleep 1000"]);
    await h.startDaemon();
    await h.client.start(id);
    const name = id.slice(0, id.indexOf(":"));
    const monitorPid = await findMonitor(`${h.dir}/state/log/containers/${name}`);
    // The shell forks its background sleep a moment after the start (seconds under QEMU TCG).
    for (let deadline = Date.now() + 30_000; Date.now() < deadline && (await cgroupPids(h, id)).length < 3; )
      await sleep(20);
    assert.ok((await cgroupPids(h, id)).length >= 3, "init, the shell and its background sleep");
    process.kill(monitorPid, "SIGKILL");
    const status = await h.waitForExit(id);
    assert.equal(status.reason, "error");
    for (let i = 0; i < 50 && (await cgroupPids(h, id)).length > 0; i++) await sleep(20);
    assert.deepEqual(await cgroupPids(h, id), []);
  });

  it("the daemon's fds do not grow across 20 start/stop cycles", async () => {
    const h = await ContainerHarness.create();
    harnesses.push(h);
    const id = await h.add(h.name("cycle"), "/bin/sleep", ["1000"]);
    await h.startDaemon();
    const fds = async (): Promise<number> => (await readdir(`/proc/${h.daemonPid}/fd`)).length;
    await h.client.start(id);
    await h.client.stop(id);
    const before = await fds();
    for (let i = 0; i < 20; i++) {
      await h.client.start(id);
      await h.client.stop(id);
    }
    await sleep(200);
    assert.equal(await fds(), before);
  });
});
