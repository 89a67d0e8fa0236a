/**
 * `shutdown` completes whatever the console's clients do: with a client that never reads its
 * responses, one holding an unfinished line, a half-closed one, requests pending (over the rate
 * limit, an install whose payload stalls), connections closed for over-long lines, and
 * containers running, the daemon stops its containers and exits.
 */
import assert from "node:assert/strict";
import type { Socket } from "node:net";
import { after, before, describe, it } from "node:test";
import { ContainerHarness } from "../../helpers/containers.js";
import { RawPeer } from "../../helpers/raw.js";
import { alive } from "../../helpers/cleanup.js";
import { CONNECT, rawSocket, waitUntil } from "./proc.js";

describe("console: shutdown with hostile clients", () => {
  let h: ContainerHarness;
  let sleeper: string;
  let stubborn: string;
  const peers: Socket[] = [];
  before(async () => {
    h = await ContainerHarness.create();
    sleeper = await h.add(h.name("sleeper"), "/bin/sleep", ["1000"]);
    stubborn = await h.add(
      h.name("stubborn"),
      "/bin/sh",
      ["-c", "trap '' TERM; while true; do sleep 1; done"],
      "stop_timeout: 300ms\n",
    );
    // Long timeouts: the daemon must not get rid of these clients before the shutdown.
    await h.startDaemon(`console.main.options.max_request_size = "64K"
console.main.options.max_requests_per_sec = 100000
console.main.options.unread_timeout = "10m"
console.main.options.idle_timeout = "10m"
console.slow.url = "unix://${h.dir}/slow.sock"
console.slow.permissions = "full"
console.slow.options.max_requests_per_sec = 1
`);
  });
  after(async () => {
    for (const p of peers) p.destroy();
    await h.close();
  });

  it("stops the containers and exits", async () => {
    const pids: number[] = [];
    for (const container of [sleeper, stubborn]) {
      await h.client.start(container);
      pids.push((await h.client.inspect(container)).process!.pid);
    }

    // Never reads: requests until its unread responses stop the daemon from reading it.
    const nonReader = await rawSocket(h.url, { read: false });
    peers.push(nonReader);
    nonReader.write(CONNECT);
    const request = `{"request":{"inspect":{"container":"${"n".repeat(1000)}:1.0.0"}}}\n`;
    while (nonReader.write(request));
    // An unfinished line.
    const unfinished = await rawSocket(h.url, { read: false });
    peers.push(unfinished);
    unfinished.write(CONNECT + `{"request":{"list":"${"x".repeat(60_000)}`);
    // Half-closed, with a request whose answer it never reads.
    const halfClosed = await rawSocket(h.url, { read: false, allowHalfOpen: true });
    peers.push(halfClosed);
    halfClosed.end(CONNECT + `{"request":"list"}\n`);
    // Requests waiting for the rate limit.
    const limited = await rawSocket(`unix://${h.dir}/slow.sock`, { read: false });
    peers.push(limited);
    limited.write(CONNECT + `{"request":"list"}\n`.repeat(50));
    // An install whose payload never arrives.
    const installer = await rawSocket(h.url, { read: false });
    peers.push(installer);
    installer.write(
      CONNECT + `{"request":{"install":{"repository":"default","size":1000000}}}\n` + "x".repeat(100),
    );
    // Over-long lines, the peers keeping their ends open.
    for (let i = 0; i < 10; i++) {
      const s = await rawSocket(h.url, { read: false });
      peers.push(s);
      s.write(CONNECT + `{"request":{"list":"${"y".repeat(70_000)}"}}\n`);
    }
    // Every client above has been served up to where it stalls once a later request is answered.
    const probe = await RawPeer.open(h.url);
    await probe.handshake();
    probe.send(`{"request":"list"}`);
    assert.ok(((await probe.next()) as { response: { list: string[] } }).response.list.length === 2);

    probe.send(`{"request":"shutdown"}`);
    assert.deepEqual(await probe.next(), { response: "shutdown" });
    // Waits (with a timeout, asserting no duration) for the process to exit by itself.
    await waitUntil(
      "skiffd gone",
      () => alive(h.daemonPid),
      (a) => !a,
      30_000,
    );
    assert.equal(await h.stopDaemon(), 0);
    for (const pid of pids)
      await waitUntil(
        `container process ${pid} gone`,
        () => alive(pid),
        (a) => !a,
      );
    probe.close();
  });
});
