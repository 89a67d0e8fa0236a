// SPDY sessions (src/cri/streaming/session.ts) over a real loopback TCP connection: both roles,
// data both ways under back-pressure, PING, GOAWAY and the stream limit.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { createServer, connect, type AddressInfo, type Socket } from "node:net";
import { describe, it } from "node:test";
import { SpdySession, type SpdyStream } from "../../../src/cri/streaming/session.js";
import { encode } from "../../../src/cri/streaming/spdy.js";
import { waitFor } from "../../helpers/wait.js";

async function pair(
  maxStreams = 8,
): Promise<{ server: SpdySession; client: SpdySession; close: () => void }> {
  const listener = createServer();
  listener.listen(0, "127.0.0.1");
  await once(listener, "listening");
  const accepted = once(listener, "connection") as Promise<[Socket]>;
  const socket = connect((listener.address() as AddressInfo).port, "127.0.0.1");
  await once(socket, "connect");
  const [serverSocket] = await accepted;
  listener.close();
  const server = new SpdySession(serverSocket, { role: "server", maxStreams, idleMs: 60_000 });
  const client = new SpdySession(socket, { role: "client", maxStreams, idleMs: 60_000 });
  return {
    server,
    client,
    close: () => {
      socket.destroy();
      serverSocket.destroy();
    },
  };
}

function readAll(stream: SpdyStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    stream.readable.on("data", (d: Buffer) => parts.push(d));
    stream.readable.on("end", () => resolve(Buffer.concat(parts)));
    stream.readable.on("error", reject);
  });
}

void describe("SPDY sessions", () => {
  void it("carry a stream's headers and megabytes both ways, a slow reader pausing the connection", async () => {
    const { server, client, close } = await pair();
    const up = randomBytes(1024 * 1024);
    const down = randomBytes(1024 * 1024);
    const accepted = once(server, "stream") as Promise<[SpdyStream]>;
    const stream = client.openStream(new Map([["streamtype", ["data"]]]));
    const [remote] = await accepted;
    assert.deepEqual(remote.headers.get("streamtype"), ["data"]);
    remote.reply();
    await stream.replied;
    stream.writable.end(up);
    // Nobody reads on the server yet: the connection pauses once 256 KiB wait unread (the
    // stream is "blocked"), and resumes as the reader drains.
    await waitFor(() => remote.blocked, { timeoutMs: 30_000, what: "the unread stream to block" });
    const received = readAll(remote);
    remote.writable.end(down);
    const [got, back] = await Promise.all([received, readAll(stream)]);
    assert.ok(got.equals(up));
    assert.ok(back.equals(down));
    close();
  });

  void it("answers PING with the same id", async () => {
    const { client, close } = await pair();
    const pong = once(client, "pong") as Promise<[number]>;
    client.writeRaw(encode.ping(7));
    assert.deepEqual(await pong, [7]);
    close();
  });

  void it("refuses streams after the peer's GOAWAY, and closes on one stream over the limit", async () => {
    const { server, client, close } = await pair(2);
    client.writeRaw(encode.goaway(0, 0));
    await once(server, "goaway");
    const refused = client.openStream(new Map([["streamtype", ["x"]]]));
    await once(refused, "reset");
    close();

    const second = await pair(2);
    const ended = once(second.server, "end") as Promise<[Error]>;
    for (let i = 0; i < 3; i++) second.client.openStream(new Map([["n", [String(i)]]]));
    const [error] = await ended;
    assert.match(error.message, /more than 2 streams/);
    second.close();
  });
});
