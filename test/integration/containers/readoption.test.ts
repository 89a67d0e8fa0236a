/**
 * Re-adoption after a daemon restart, one test per outcome that containers/reliability.test.ts
 * (running, exited while down) and executor/prepared.test.ts (prepared) do not cover: a monitor
 * lost while skiffd was down, an instance created but never started, `keep_containers`, and a
 * package removed while skiffd was down. docs/containers.md lists the outcomes.
 */
import assert from "node:assert/strict";
import { access, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { detectLayout } from "../../../src/daemon/cgroups/layout.js";
import { controllerDir } from "../../../src/daemon/cgroups/paths.js";
import { ContainerHarness } from "../../helpers/containers.js";
import { waitFor } from "../../helpers/wait.js";
import { nameOf } from "../../../src/protocol/container.js";

const stateDirOf = (h: ContainerHarness, id: string): string =>
  join(h.dir, "state", "log", "containers", nameOf(id));

/** Pids in the container's cgroup (pids controller), [] once the cgroup is gone. */
async function cgroupPids(h: ContainerHarness, id: string): Promise<number[]> {
  const dir = controllerDir(await detectLayout(), "pids", `/${h.cgroup}/${nameOf(id)}`);
  if (dir === undefined) throw new Error("this host has no pids controller");
  const text = await readFile(`${dir}/cgroup.procs`, "utf8").catch(() => "");
  return text.split("\n").filter(Boolean).map(Number);
}

async function cgroupExists(h: ContainerHarness, id: string): Promise<boolean> {
  const dir = controllerDir(await detectLayout(), "pids", `/${h.cgroup}/${nameOf(id)}`);
  return access(dir!).then(
    () => true,
    () => false,
  );
}

/** Pids of the skiff-monitors whose state directory is `stateDir`. */
async function monitorsOf(stateDir: string): Promise<number[]> {
  const pids: number[] = [];
  for (const p of await readdir("/proc")) {
    if (!/^\d+$/.test(p)) continue;
    const argv = (await readFile(`/proc/${p}/cmdline`, "utf8").catch(() => "")).split("\0");
    if (argv.some((a) => a.endsWith("skiff-monitor")) && argv.includes(stateDir)) pids.push(Number(p));
  }
  return pids;
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe("re-adoption: every outcome", () => {
  const harnesses: ContainerHarness[] = [];
  after(async () => {
    for (const h of harnesses) await h.close();
  });

  it("a monitor lost while skiffd was down: an error exit, the container's processes killed, a new start works", async () => {
    const h = await ContainerHarness.create();
    harnesses.push(h);
    const id = await h.add(h.name("lost"), "/bin/sh", ["-c", "sleep 1000 & sleep 1000"]);
    await h.startDaemon();
    await h.client.start(id);
    await waitFor(async () => (await cgroupPids(h, id)).length >= 3, {
      timeoutMs: 20_000,
      what: "the container's processes to run",
    });
    const [monitor] = await monitorsOf(stateDirOf(h, id));
    assert.ok(monitor !== undefined, "the container has a monitor");
    await h.killDaemon();
    process.kill(monitor, "SIGKILL");
    await waitFor(() => !alive(monitor), { timeoutMs: 20_000, what: "the monitor to die" });

    await h.startDaemon();
    const status = await h.waitForExit(id);
    assert.deepEqual(status, { type: "signalled", signal: 9, reason: "error" });
    await waitFor(async () => (await cgroupPids(h, id)).length === 0, {
      timeoutMs: 20_000,
      what: "no process of the container to be left",
    });
    assert.equal((await h.client.inspect(id)).process, null);
    const from = h.notifications.length;
    await h.client.start(id);
    await h.client.stop(id);
    assert.equal(h.exitsOf(id).length, 2, "the lost instance's exit and the new one's, once each");
    assert.ok(h.notifications.length > from);
  });

  it("an instance created but never started: discarded without an exit, its monitor and cgroup gone, a start works", async () => {
    const h = await ContainerHarness.create();
    harnesses.push(h);
    const id = await h.add(h.name("created"), "/bin/sh", ["-c", "echo ran; sleep 1000"]);
    await h.startDaemon();
    // A prepared instance is one created and not started; without its `prepared` mark in the
    // record it is what a daemon that died between `create` and `start` leaves.
    await h.client.prepare(id);
    await waitFor(async () => (await h.client.inspect(id)).state === "prepared", {
      timeoutMs: 20_000,
      what: "the instance to be prepared",
    });
    const stateDir = stateDirOf(h, id);
    const monitors = await monitorsOf(stateDir);
    assert.equal(monitors.length, 1);
    await h.killDaemon();
    const recordPath = join(stateDir, "instance.json");
    const record = JSON.parse(await readFile(recordPath, "utf8")) as { prepared?: boolean };
    assert.equal(record.prepared, true);
    delete record.prepared;
    await writeFile(recordPath, JSON.stringify(record));

    await h.startDaemon();
    await h.waitForDaemonLog(/discarded a container that was created but never started/, 30_000);
    await waitFor(() => !alive(monitors[0]!), {
      timeoutMs: 20_000,
      what: "the discarded instance's monitor to end",
    });
    await waitFor(async () => !(await cgroupExists(h, id)), {
      timeoutMs: 20_000,
      what: "the discarded instance's cgroup to be removed",
    });
    const inspected = await h.client.inspect(id);
    assert.equal(inspected.process, null);
    assert.notEqual(inspected.state, "prepared");
    assert.deepEqual(h.exitsOf(id), [], "a never-started instance has no exit to report");
    await h.client.start(id);
    await h.waitForLog(id, "stdout ran", 20_000);
    await h.client.stop(id);
  });

  it("keep_containers: a stopped skiffd leaves the container running; the next one re-adopts it with its pid", async () => {
    const h = await ContainerHarness.create();
    harnesses.push(h);
    const id = await h.add(h.name("kept"), "/bin/sleep", ["1000"]);
    await h.startDaemon("keep_containers = true\n");
    await h.client.start(id);
    const pid = (await h.client.inspect(id)).process!.pid;
    assert.equal(await h.stopDaemon(), 0);
    assert.ok(alive(pid), "the container outlives the daemon");
    assert.deepEqual(h.exitsOf(id), []);

    await h.startDaemon();
    assert.equal((await h.client.inspect(id)).process?.pid, pid);
    assert.deepEqual(await h.client.stop(id), { type: "signalled", signal: 15, reason: "shutdown" });
    await waitFor(() => !alive(pid), { timeoutMs: 20_000, what: "the kept container to end" });
    assert.equal(h.exitsOf(id).length, 1);
  });

  it("a package removed while skiffd was down: its running instance is ended and cleaned up, the daemon serves on", async () => {
    const h = await ContainerHarness.create();
    harnesses.push(h);
    const gone = await h.add(h.name("gone"), "/bin/sleep", ["1000"]);
    const stays = await h.add(h.name("stays"), "/bin/sleep", ["1000"]);
    await h.startDaemon();
    await h.client.start(gone);
    await h.client.start(stays);
    const pid = (await h.client.inspect(gone)).process!.pid;
    const staysPid = (await h.client.inspect(stays)).process!.pid;
    const monitors = await monitorsOf(stateDirOf(h, gone));
    await h.killDaemon();
    await rm(join(h.dir, "repo", `${nameOf(gone)}-1.0.0.npk`));

    await h.startDaemon();
    await h.waitForDaemonLog(/no longer installed/, 30_000);
    await waitFor(() => !alive(pid), { timeoutMs: 30_000, what: "the uninstalled container's init to end" });
    await waitFor(() => monitors.every((m) => !alive(m)), {
      timeoutMs: 30_000,
      what: "the uninstalled container's monitor to end",
    });
    await waitFor(async () => !(await cgroupExists(h, gone)), {
      timeoutMs: 30_000,
      what: "the uninstalled container's cgroup to be removed",
    });
    assert.ok(!(await h.client.list()).some((c) => c.includes(nameOf(gone))));
    assert.equal((await h.client.inspect(stays)).process?.pid, staysPid);
    assert.deepEqual(await h.client.stop(stays), { type: "signalled", signal: 15, reason: "shutdown" });
  });
});
