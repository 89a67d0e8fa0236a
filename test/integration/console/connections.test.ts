/**
 * Bounds across connections: the global buffer budget (`console_buffer_budget`) closes
 * connections whose unfinished lines would take it past its limit, a listener serves at most
 * `max_connections` at once, and an idle connection is closed after `idle_timeout` (not a
 * subscriber). Measured on a real skiffd's /proc/<pid>, as bounds on counts and sizes.
 */
import assert from "node:assert/strict";
import type { Socket } from "node:net";
import { after, before, describe, it } from "node:test";
import { startDaemonProcess, type DaemonProcess } from "../../helpers/daemon.js";
import { RawPeer } from "../../helpers/raw.js";
import { CONNECT, closed, fdCount, memory, rawSocket, waitUntil } from "./proc.js";

const MB = 1024 * 1024;

describe("console: bounds across connections", () => {
  let d: DaemonProcess;
  const peers: Socket[] = [];
  before(async () => {
    d = await startDaemonProcess(
      (dir) => `
console_buffer_budget = "8M"
[console.main.options]
max_request_size = "2M"
max_connections = 500
[console.few]
url = "unix://${dir}/few.sock"
permissions = "full"
[console.few.options]
max_connections = 20
idle_timeout = "1s"
`,
    );
  });
  after(async () => {
    for (const p of peers) p.destroy();
    await d.stop();
  });

  it("unfinished lines share one budget: over it, connections are closed, not the daemon grown", async () => {
    const pid = d.child.pid!;
    const peakBefore = await memory(pid, "VmHWM");
    const count = 60;
    const sockets = await Promise.all(Array.from({ length: count }, () => rawSocket(d.url)));
    peers.push(...sockets);
    const isClosed = sockets.map(() => false);
    sockets.forEach((s, i) => void closed(s).then(() => (isClosed[i] = true)));
    // Each holds 1 MB of a line that never ends: 60 MB against a budget of 8 MB.
    for (const s of sockets) s.write(CONNECT + `{"request":{"list":"${"x".repeat(MB)}`);
    const closedCount = (): number => isClosed.filter(Boolean).length;
    // At most 8 lines of 1 MB fit; the budget also holds whatever else is buffered.
    await waitUntil("connections over the budget closed", closedCount, (n) => n >= count - 8, 30_000);
    const growth = (await memory(pid, "VmHWM")) - peakBefore;
    assert.ok(growth < 48 * MB, `peak resident set grew by ${(growth / MB).toFixed(0)} MB`);
    await waitUntil(
      "the reason in the log",
      () => d.log(),
      (log) => /buffer budget exhausted/.test(log),
    );
    for (const s of sockets) s.destroy();
    // The budget is free again: a new client is served.
    const p = await RawPeer.open(d.url);
    await p.handshake();
    p.send(`{"request":"list"}`);
    assert.deepEqual(await p.next(), { response: { list: [] } });
    p.close();
  });

  it("a listener serves at most max_connections; idle ones are closed, subscribers stay", async () => {
    const url = `unix://${d.dir}/few.sock`;
    const pid = d.child.pid!;
    const fdsBefore = await fdCount(pid);
    const subscriber = await RawPeer.open(url);
    assert.deepEqual(await subscriber.handshake("0.9.2", true), { connect_ack: null });
    const peersOfFew: RawPeer[] = [];
    let acked = 0;
    for (let i = 0; i < 40; i++) {
      const p = await RawPeer.open(url);
      peersOfFew.push(p);
      // A refused connection is closed before any answer: null.
      if ((await p.handshake().catch(() => null)) !== null) acked++;
    }
    assert.equal(acked, 19, "20 connections at once, the subscriber included");
    assert.ok((await fdCount(pid)) <= fdsBefore + 20 + 2, "no descriptor beyond the limit");
    // Every idle connection is closed by the daemon, and each closure frees a place.
    await Promise.all(peersOfFew.map((p) => p.closed));
    subscriber.send(`{"request":"list"}`);
    assert.deepEqual(await subscriber.next(), { response: { list: [] } });
    subscriber.close();
    await waitUntil(
      "descriptors released",
      () => fdCount(pid),
      (n) => n <= fdsBefore,
    );
    await waitUntil(
      "the reasons in the log",
      () => d.log(),
      (log) => /no request within 1000 ms/.test(log),
    );
    assert.match(d.log(), /max_connections/);
  });
});
