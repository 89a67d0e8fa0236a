/** `npk_stream_timeout`: an install whose payload stops arriving is aborted and leaves nothing. */
import assert from "node:assert/strict";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { connect } from "../../../src/client/index.js";
import { startInProcessDaemon, type TestDaemon } from "../../helpers/daemon.js";
import { RawPeer } from "../../helpers/raw.js";

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

describe("npk_stream_timeout", () => {
  let d: TestDaemon;
  before(async () => {
    d = await startInProcessDaemon(
      (dir) => `npk_stream_timeout = "300ms"
[repositories.plain]
type = "fs"
dir = "${dir}/plain"
`,
    );
  });
  after(async () => {
    await d.stop();
  });

  it("aborts an upload that stalls, answers why, closes the connection and keeps nothing", async () => {
    const peer = await RawPeer.open(d.url);
    assert.deepEqual(await peer.handshake(), { connect_ack: null });
    peer.send(JSON.stringify({ request: { install: { repository: "plain", size: 4096 } } }));
    peer.socket.write(Buffer.alloc(1000, 7)); // a quarter of the payload, then silence
    const reply = await peer.next();
    assert.match(
      JSON.stringify(reply),
      /"install":\{"error".*sent nothing for 300 ms \(npk_stream_timeout\)/,
    );
    assert.equal(await peer.next(), null, "the connection ends after the answer");
    peer.close();
    await peer.closed;
    assert.deepEqual(await filesUnder(join(d.dir, "plain")), []);

    // The daemon keeps serving.
    const client = await connect(d.url);
    assert.deepEqual(await client.list(), []);
    client.close();
  });
});
