import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { connect, LaggedError } from "../../../src/client/index.js";
import type { Notification } from "../../../src/protocol/messages.js";
import { startInProcessDaemon, type TestDaemon } from "../../helpers/daemon.js";
import { RawPeer } from "../../helpers/raw.js";

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
    while (d.runtime.hub.size < 2) await new Promise((r) => setImmediate(r));

    const total = 20_000;
    const received: Notification[] = [];
    const fastReader = (async () => {
      try {
        for await (const n of fast.notifications()) {
          received.push(n);
          if (received.length === total) return;
        }
      } catch (e) {
        if (!(e instanceof LaggedError)) throw e;
        return;
      }
    })();
    for (let i = 0; i < total; i++) {
      d.runtime.hub.broadcast({ type: "install", container: `n${i}:1.0.0` });
      if (i % 500 === 0) await new Promise((r) => setImmediate(r));
    }
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
    await fastReader;
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
