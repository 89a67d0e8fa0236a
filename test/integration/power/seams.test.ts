import assert from "node:assert/strict";
import { randomInt } from "node:crypto";
import { after, describe, it } from "node:test";
import { RuntimeError } from "../../../src/client/index.js";
import { addIdleHttpd, ContainerHarness, freezerStateOf, httpGet } from "../../helpers/containers.js";
import { waitFor } from "../../helpers/wait.js";

describe("power: freezer seams and idle suspend", () => {
  const harnesses: ContainerHarness[] = [];
  after(async () => {
    for (const h of harnesses) await h.close();
  });

  it("a wake lock taken while the freeze is in progress gives wake_locks_exist", async () => {
    const h = await ContainerHarness.create();
    harnesses.push(h);
    const id = await h.add(h.name("sleeper"), "/bin/sleep", ["1000"]);
    // The hold is long enough to take the lock inside it on a loaded host; the freeze timeout
    // covers the hold.
    await h.startDaemon(`[debug]\nfreeze_hold = "5s"\n[power]\nfreeze_timeout = "30s"\n`);
    await h.client.start(id);
    await h.client.addWakeSource(id, "t", { type: "timer", after_ms: 60_000 });
    const from = h.notifications.length;
    const suspended = (await h.newClient()).suspend(id).then(
      () => "ok",
      (e: unknown) => (e instanceof RuntimeError ? e.variant : String(e)),
    );
    // The seam is reached once the kernel was asked to freeze (freezer.state FREEZING/FROZEN on
    // v1, cgroup.freeze 1 on v2) and before the daemon reports the container asleep.
    await waitFor(async () => (await freezerStateOf(h, id)) !== "thawed", {
      timeoutMs: 20_000,
      what: "the freeze to be requested of the kernel",
    });
    assert.ok(!h.notifications.slice(from).some((n) => n.type === "power" && n.state === "asleep"));
    await h.client.acquireWakeLock(id, "late");
    assert.equal(await suspended, "wake_locks_exist");
    assert.equal(await freezerStateOf(h, id), "thawed");
    assert.ok(!h.notifications.slice(from).some((n) => n.type === "power" && n.state === "asleep"));
  });

  it("a freeze that cannot complete gives suspend_failure and a thawed cgroup", async () => {
    const h = await ContainerHarness.create();
    harnesses.push(h);
    const id = await h.add(h.name("sleeper"), "/bin/sleep", ["1000"]);
    await h.startDaemon(`[debug]\nfreeze_fail = true\n`);
    await h.client.start(id);
    await h.client.addWakeSource(id, "t", { type: "timer", after_ms: 60_000 });
    await assert.rejects(h.client.suspend(id), (e: unknown) => {
      assert.ok(e instanceof RuntimeError && e.variant === "suspend_failure", String(e));
      // The failure is the seam's, not another one: the answer says why the freeze failed.
      assert.match(e.message, /debug\.freeze_fail/);
      return true;
    });
    assert.equal(await freezerStateOf(h, id), "thawed");
    assert.equal((await h.client.power(id)).state, "awake");
  });

  it("idle suspend: httpd behind a proxy freezes when idle and a request through the proxy is answered", async () => {
    const h = await ContainerHarness.create();
    harnesses.push(h);
    const port = randomInt(30000, 40000);
    const proxy = port + 1;
    const id = await addIdleHttpd(h, port);
    await h.startDaemon();
    await h.client.start(id);
    const asleep = (from: number): Promise<unknown> =>
      h.waitFor((n) => n.type === "power" && n.container === id && n.state === "asleep", 10_000, from);
    await asleep(0);
    assert.equal(await freezerStateOf(h, id), "frozen");
    const body = await httpGet(proxy);
    assert.ok(body.length > 0);
    // Without traffic for its idle time it sleeps again (httpd never calls proxy_handled).
    await asleep(h.notifications.length);
    assert.equal(await freezerStateOf(h, id), "frozen");
  });
});
