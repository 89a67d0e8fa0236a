/**
 * Bad connections release their descriptors at once: an over-long line (before or after the
 * handshake) or a malformed `connect` destroys the connection in the daemon even while the
 * peer keeps its end open, on any listener. Counted in /proc/<pid>/fd of a real skiffd.
 */
import assert from "node:assert/strict";
import type { Socket } from "node:net";
import { after, before, describe, it } from "node:test";
import { startDaemonProcess, type DaemonProcess } from "../../helpers/daemon.js";
import { RawPeer } from "../../helpers/raw.js";
import { CONNECT, closed, fdCount, rawSocket, waitUntil, within } from "./proc.js";

const BAD_CONNECTIONS = 50;

describe("console: bad connections release their descriptors", () => {
  let d: DaemonProcess;
  let limitedUrl: string;
  // The test's ends stay open until the end: a peer that never closes must not matter.
  const peers: Socket[] = [];
  before(async () => {
    d = await startDaemonProcess(
      (dir) => `
[console.main.options]
max_request_size = 1024
[console.limited]
url = "unix://${dir}/limited.sock"
permissions = "full"
[console.limited.options]
max_request_size = 1024
max_connections = 10
`,
    );
    limitedUrl = `unix://${d.dir}/limited.sock`;
  });
  after(async () => {
    for (const p of peers) p.destroy();
    await d.stop();
  });

  async function baseline(): Promise<number> {
    // One good connection first, so that whatever the first connection allocates is counted.
    const p = await RawPeer.open(d.url);
    await p.handshake();
    p.close();
    await p.closed;
    return waitUntil(
      "a stable descriptor count",
      () => fdCount(d.child.pid!),
      () => true,
    );
  }

  async function badConnections(url: string, send: (i: number) => string): Promise<void> {
    // A few at a time, so that the limited listener's bound is never what refuses them.
    for (let i = 0; i < BAD_CONNECTIONS; i += 5) {
      const batch = await Promise.all([0, 1, 2, 3, 4].map(() => rawSocket(url)));
      peers.push(...batch);
      batch.forEach((s, j) => s.write(send(i + j)));
      await within("the daemon to close bad connections", Promise.all(batch.map(closed)));
    }
  }

  async function assertNoGrowth(before: number, what: string): Promise<void> {
    const pid = d.child.pid!;
    await waitUntil(
      `descriptors back to ${before} after ${what}`,
      () => fdCount(pid),
      (n) => n <= before,
    );
  }

  // Far over the limit: the unread rest fills the daemon's receive buffers, so the daemon never
  // sees the peer's end unless it reads on, which it must not need to.
  const junk = "z".repeat(256 * 1024);
  const oversized = (i: number): string =>
    `{"request":{"inspect":{"container":"${"a".repeat(2000)}${i}${junk}:1.0.0"}}}`;

  it("an over-long line before the handshake", async () => {
    const fds = await baseline();
    await badConnections(d.url, (i) => oversized(i)); // no newline needed: 2000 bytes > 1024
    await assertNoGrowth(fds, "over-long lines before the handshake");
  });

  it("an over-long line after the handshake", async () => {
    const fds = await baseline();
    await badConnections(d.url, (i) => CONNECT + oversized(i) + "\n");
    await assertNoGrowth(fds, "over-long lines after the handshake");
  });

  it("a malformed connect", async () => {
    const fds = await baseline();
    await badConnections(d.url, (i) => `not a connect ${i}\n${junk}\n`);
    await assertNoGrowth(fds, "malformed connects");
  });

  it("on a listener with a connection limit, which keeps serving", async () => {
    const fds = await baseline();
    await badConnections(limitedUrl, (i) => CONNECT + oversized(i) + "\n");
    await assertNoGrowth(fds, "over-long lines on the limited listener");
    // Had the bad connections been kept, they would hold all ten places of this listener.
    const p = await RawPeer.open(limitedUrl);
    assert.deepEqual(await p.handshake(), { connect_ack: null });
    p.send(`{"request":"list"}`);
    assert.deepEqual(await p.next(), { response: { list: [] } });
    p.close();
  });
});
