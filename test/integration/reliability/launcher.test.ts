/**
 * skiffd's monitor launcher (native/launcher) killed -9 while containers run: they keep running
 * (their monitors are in their own sessions), the daemon logs the loss, and the next start gets
 * a new launcher.
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { after, describe, it } from "node:test";
import { ContainerHarness } from "../../helpers/containers.js";
import { Skiffd, waitUntil } from "./skiffd.js";

/** The pids of skiffd's skiff-launcher children (one starts monitors, one skiff-mount). */
async function launchersOf(daemonPid: number): Promise<number[]> {
  const children = await readFile(`/proc/${daemonPid}/task/${daemonPid}/children`, "utf8").catch(() => "");
  const found: number[] = [];
  for (const pid of children.trim().split(/\s+/).filter(Boolean).map(Number)) {
    const comm = await readFile(`/proc/${pid}/comm`, "utf8").catch(() => "");
    if (comm.trim() === "skiff-launcher") found.push(pid);
  }
  return found;
}

const parentOf = async (pid: number): Promise<number> => {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
};

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe("the monitor launcher", () => {
  const cleanups: (() => Promise<void>)[] = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  });

  it("killed -9 while containers run: they keep running, the loss is logged, the next start works", async () => {
    const h = await ContainerHarness.create();
    const daemon = new Skiffd(h);
    cleanups.push(async () => {
      await daemon.forceCleanup();
      await h.close();
    });
    await daemon.writeConfig();
    const first = await h.add(h.name("first"), "/bin/sleep", ["1000"]);
    const second = await h.add(h.name("second"), "/bin/sleep", ["1000"]);
    const third = await h.add(h.name("third"), "/bin/sleep", ["1000"]);
    await daemon.start();
    const client = daemon.subscriber!;
    await client.start(first);
    await client.start(second);
    const monitors = await daemon.scanMonitors();
    assert.equal(monitors.length, 2);
    const launcher = await parentOf(monitors[0]!);
    assert.ok((await launchersOf(daemon.child!.pid!)).includes(launcher), "skiffd's launcher started it");
    for (const pid of monitors) {
      const stat = await readFile(`/proc/${pid}/stat`, "utf8");
      const [, ppid, , session] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      assert.equal(Number(ppid), launcher, "the launcher is the monitor's parent (and reaps it)");
      assert.equal(Number(session), pid, "the monitor leads its own session");
    }

    process.kill(launcher, "SIGKILL");
    await waitUntil("the daemon to log the launcher's loss", () =>
      /skiff-launcher \(pid \d+\) was killed by SIGKILL/.test(daemon.log),
    );
    for (const pid of monitors) assert.ok(alive(pid), `monitor ${pid} survives its launcher`);
    for (const id of [first, second]) assert.equal((await client.inspect(id)).state, "running");

    await client.start(third);
    assert.equal((await client.inspect(third)).state, "running");
    const next = await parentOf((await daemon.scanMonitors()).find((pid) => !monitors.includes(pid))!);
    assert.notEqual(next, launcher, "a new launcher started the third monitor");
    assert.ok((await launchersOf(daemon.child!.pid!)).includes(next));

    // A container of the dead launcher's time still stops, and its exit is reported.
    await client.stop(first, 5);
    await waitUntil("the exit to be reported", () =>
      daemon.received.some(({ notification: n }) => n.type === "exit" && n.container === first),
    );
    assert.equal(await daemon.stop(), 0);
    await waitUntil("the launcher to end with the daemon", () => !alive(next));
  });
});
