import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { connect } from "../../../src/client/index.js";
import type { Notification } from "../../../src/protocol/messages.js";
import { startInProcessDaemon, type TestDaemon } from "../../helpers/daemon.js";
import { RawPeer } from "../../helpers/raw.js";
import { waitFor, within } from "../../helpers/wait.js";

describe("notifications", () => {
  let d: TestDaemon;
  before(async () => {
    d = await startInProcessDaemon(`notification_buffer_size = 16`);
  });
  after(() => d.stop());

  it("a slow Skiff-dialect subscriber does not delay others and is told it lagged", async () => {
    const slow = await RawPeer.open(d.url);
    assert.deepEqual(await slow.handshake("0.9.2", true, "skiff"), { connect_ack: null });
    slow.socket.pause();
    const fast = await connect(d.url, { notifications: true });
    // Wait until both subscriptions are registered.
    await waitFor(() => d.runtime.hub.size >= 2, { timeoutMs: 20_000, what: "both subscriptions" });

    // The fast subscriber reads everything: broadcasts go in batches smaller than the buffer, each
    // once the fast one has read the previous batch, so it never lags; the slow one (paused) does.
    const total = 20_000;
    const batch = 8;
    const received: Notification[] = [];
    let caughtUp: (() => void) | undefined;
    let target = 0;
    const fastReader = (async () => {
      for await (const n of fast.notifications()) {
        received.push(n);
        if (received.length >= target) caughtUp?.();
        if (received.length === total) return;
      }
    })();
    for (let i = 0; i < total; i += batch) {
      target = i + batch;
      const read = new Promise<void>((resolve) => (caughtUp = resolve));
      for (let j = i; j < target; j++) d.runtime.hub.broadcast({ type: "install", container: `n${j}:1.0.0` });
      await within(Promise.race([read, fastReader.then(() => undefined)]), {
        timeoutMs: 30_000,
        what: `the fast subscriber to read notification ${target - 1}`,
        detail: () => `it read ${received.length}`,
      });
    }
    await within(fastReader, { timeoutMs: 30_000, what: "the fast subscriber to read everything" });
    // Everything, in order: no lag (a LaggedError would have failed fastReader).
    assert.equal(received.length, total);
    received.forEach((n, i) => {
      if (n.type !== "install" || n.container !== `n${i}:1.0.0`)
        assert.fail(`notification ${i} is ${JSON.stringify(n)}, not the install of n${i}:1.0.0`);
    });
    // Another client's request is answered while the slow subscriber is stalled.
    const other = await connect(d.url);
    assert.deepEqual(await other.list(), []);
    other.close();

    // The slow one now reads: it sees some notifications, one lagged with the exact gap, more.
    slow.socket.resume();
    let delivered = 0;
    let missed = 0;
    let lastIndex = -1;
    while (delivered + missed < total) {
      const msg = (await slow.next()) as { notification: { install?: string; lagged?: { missed: number } } };
      if (msg.notification.lagged) {
        missed += msg.notification.lagged.missed;
        lastIndex += msg.notification.lagged.missed;
        continue;
      }
      const index = Number(/^n(\d+):/.exec(msg.notification.install!)![1]);
      assert.equal(index, lastIndex + 1, "notifications arrive in order with the gap reported exactly");
      lastIndex = index;
      delivered++;
    }
    assert.ok(missed > 0, "the slow subscriber must have lagged");
    slow.close();
    fast.close();
  });

  it("every subscriber gets the shutdown notification", async () => {
    const extra = await startInProcessDaemon();
    const client = await connect(extra.url, { notifications: true });
    const first = client.notifications().next();
    await extra.stop();
    assert.deepEqual((await first).value, { type: "shutdown" });
    client.close();
  });
});
