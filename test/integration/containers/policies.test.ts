import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import type { Notification } from "../../../src/protocol/messages.js";
import { ContainerHarness } from "../../helpers/containers.js";
import { waitFor as waitForCondition } from "../../helpers/wait.js";

describe("autostart, critical containers and the restart policy", () => {
  const harnesses: ContainerHarness[] = [];
  after(async () => {
    for (const h of harnesses) await h.close();
  });

  it("a restart policy retries with backoff and gives up after max_retries", async () => {
    const h = await ContainerHarness.create();
    harnesses.push(h);
    const id = await h.add(
      h.name("flaky"),
      "/bin/sh",
      ["-c", "exit 3"],
      "restart:\n  policy: on-failure\n  max_retries: 3\n  backoff:\n    initial: 50ms\n    max: 200ms\n",
    );
    await h.startDaemon();
    await h.client.start(id);
    // The first run and three restarts: four exits, then the policy gives up.
    // Four starts take seconds under QEMU TCG (the VM lane): wait on the count, bounded generously.
    await waitForCondition(() => h.exitsOf(id).length >= 4, {
      timeoutMs: 90_000,
      what: "four exits",
      intervalMs: 50,
    });
    assert.equal(h.exitsOf(id).length, 4);
    await h.waitForDaemonLog(/restart policy gives up after 3 restarts/);
    // Backoff doubles: 50, 100, 200 ms between exit and the next start.
    const delays = [...h.log.matchAll(/restart \d+ in (\d+) ms/g)].map((m) => Number(m[1]));
    assert.deepEqual(delays, [50, 100, 200]);
    const starts = h.notifications.filter((n: Notification) => n.type === "started" && n.container === id);
    assert.equal(starts.length, 4);
    assert.equal((await h.client.inspect(id)).process, null);
  });

  it("an exit after a stop request is not restarted", async () => {
    const h = await ContainerHarness.create();
    harnesses.push(h);
    const id = await h.add(h.name("always"), "/bin/sleep", ["1000"], "restart:\n  policy: always\n");
    await h.startDaemon();
    await h.client.start(id);
    await h.client.stop(id);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await h.client.inspect(id)).process, null);
    assert.equal(h.exitsOf(id).length, 1);
  });

  it("autostart: relaxed containers start with the daemon; a critical one's failure shuts the daemon down", async () => {
    const h = await ContainerHarness.create();
    harnesses.push(h);
    const relaxed = await h.add(h.name("relaxed"), "/bin/sleep", ["1000"], "autostart: relaxed\n");
    const critical = await h.add(
      h.name("critical"),
      "/bin/sh",
      ["-c", "sleep 0.5; exit 7"],
      "autostart: critical\n",
    );
    await h.startDaemon();
    await h.waitFor((n) => n.type === "started" && n.container === relaxed, 10_000);
    assert.deepEqual(await h.waitForExit(critical), { type: "exit", code: 7, reason: "shutdown" });
    await h.waitFor((n) => n.type === "shutdown", 10_000);
    assert.equal(await h.daemonExited(), 1, "a critical failure is not a clean exit");
    assert.match(h.log, /critical container .*critical.* exited: exit code 7/);
  });
});
