/**
 * A container asleep or paused when skiffd died: the restarted daemon re-adopts it and must not
 * leave it frozen with no way to wake it. Its power record starts `awake` again (the wake
 * sources, suspend requests and timers of the dead daemon are gone), so the kernel's freezer must
 * agree: the container runs, and its manifest proxies forward again.
 */
import assert from "node:assert/strict";
import { randomInt } from "node:crypto";
import { after, describe, it } from "node:test";
import { addIdleHttpd, ContainerHarness, freezerStateOf, httpGet } from "../../helpers/containers.js";
import { waitFor } from "../../helpers/wait.js";

describe("power state across a daemon restart", () => {
  const harnesses: ContainerHarness[] = [];
  after(async () => {
    for (const h of harnesses) await h.close();
  });

  it("idle-suspended behind a proxy, kill -9 of skiffd: the next daemon answers through the proxy and can suspend it again", async () => {
    const h = await ContainerHarness.create();
    harnesses.push(h);
    const port = randomInt(30000, 40000);
    const proxy = port + 1;
    const id = await addIdleHttpd(h, port);
    await h.startDaemon();
    await h.client.start(id);
    await h.waitFor((n) => n.type === "power" && n.container === id && n.state === "asleep", 20_000);
    assert.equal(await freezerStateOf(h, id), "frozen");

    await h.killDaemon();
    const from = h.notifications.length;
    await h.startDaemon();
    assert.equal((await h.client.inspect(id)).process !== null, true, "re-adopted");
    const power = await h.client.power(id);
    const kernel = await freezerStateOf(h, id);
    assert.equal(
      power.state === "awake" ? "thawed" : "frozen",
      kernel,
      `the daemon says ${power.state}, the kernel's freezer says ${kernel}`,
    );
    // The proxy is open again and wakes it (or it runs): a request is answered.
    assert.ok((await httpGet(proxy)).length > 0);
    // Idle again, it falls asleep again: the idle timer runs for the re-adopted instance.
    await h.waitFor((n) => n.type === "power" && n.container === id && n.state === "asleep", 20_000, from);
    assert.equal(await freezerStateOf(h, id), "frozen");
    assert.ok((await httpGet(proxy)).length > 0);
  });

  it("suspended with a pending suspend, kill -9 of skiffd: the re-adopted container is thawed and awake", async () => {
    const h = await ContainerHarness.create();
    harnesses.push(h);
    const id = await h.add(h.name("counter"), "/bin/sh", [
      "-c",
      "i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.1; done",
    ]);
    await h.startDaemon();
    await h.client.start(id);
    await h.client.addWakeSource(id, "later", { type: "timer", after_ms: 600_000 });
    const pending = (await h.newClient()).suspend(id).catch((e: unknown) => e);
    await h.waitFor((n) => n.type === "power" && n.container === id && n.state === "asleep", 20_000);
    assert.equal(await freezerStateOf(h, id), "frozen");

    await h.killDaemon();
    await pending;
    await h.startDaemon();
    assert.equal((await h.client.power(id)).state, "awake");
    await waitFor(async () => (await freezerStateOf(h, id)) === "thawed", {
      timeoutMs: 20_000,
      what: "the re-adopted container to be thawed",
    });
    // It runs: its output goes on.
    const ticks = async (): Promise<number> =>
      (await h.logLines(id)).filter((l) => l.includes("tick")).length;
    const before = await ticks();
    await waitFor(async () => (await ticks()) > before, {
      timeoutMs: 20_000,
      what: "the container to print again",
    });
    // And it can be suspended again.
    const again = (await h.newClient()).suspend(id).catch((e: unknown) => e);
    await h.waitFor((n) => n.type === "power" && n.container === id && n.state === "asleep", 20_000);
    await h.client.stop(id);
    await again;
  });

  it("paused, kill -9 of skiffd: the re-adopted container is thawed and awake", async () => {
    const h = await ContainerHarness.create();
    harnesses.push(h);
    const id = await h.add(h.name("paused"), "/bin/sleep", ["1000"]);
    await h.startDaemon();
    await h.client.start(id);
    await h.client.pause(id);
    assert.equal(await freezerStateOf(h, id), "frozen");
    await h.killDaemon();
    await h.startDaemon();
    assert.equal((await h.client.power(id)).state, "awake");
    assert.equal(await freezerStateOf(h, id), "thawed");
    assert.deepEqual(await h.client.stop(id), { type: "signalled", signal: 15, reason: "shutdown" });
  });
});
