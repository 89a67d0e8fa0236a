import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { startInProcessDaemon, type TestDaemon } from "../../helpers/daemon.js";
import { RawPeer } from "../../helpers/raw.js";
import { within } from "../../helpers/wait.js";

describe("console handshake", () => {
  let d: TestDaemon;
  before(async () => {
    d = await startInProcessDaemon(
      (dir) => `
[console.limited]
url = "unix://${dir}/limited.sock"
permissions = ["list"]
[console.limited.options]
connect_timeout = "200ms"
`,
    );
  });
  after(() => d.stop());
  const limited = (): string => `unix://${d.dir}/limited.sock`;

  it("acks the same version", async () => {
    const p = await RawPeer.open(d.url);
    assert.deepEqual(await p.handshake("0.9.2"), { connect_ack: null });
    p.close();
  });

  it("acks a higher patch", async () => {
    const p = await RawPeer.open(d.url);
    assert.deepEqual(await p.handshake("0.9.9"), { connect_ack: null });
    p.close();
  });

  it("nacks a lower minor with invalid_protocol_version and closes", async () => {
    const p = await RawPeer.open(d.url);
    assert.deepEqual(await p.handshake("0.8.0"), {
      connect_nack: { invalid_protocol_version: { version: "0.9.2" } },
    });
    assert.equal(await p.next(), null);
  });

  it("closes a connection that sends no connect within the timeout", async () => {
    const p = await RawPeer.open(limited());
    await within(p.closed, { timeoutMs: 20_000, what: "the daemon to close the silent connection" });
    assert.equal(await p.next(), null);
  });

  it("nacks notifications without permission with permission_denied and closes", async () => {
    const p = await RawPeer.open(limited());
    assert.deepEqual(await p.handshake("0.9.2", true), { connect_nack: "permission_denied" });
    assert.equal(await p.next(), null);
  });

  it("closes when the first message is not connect", async () => {
    const p = await RawPeer.open(d.url);
    p.send(`{"request":"list"}`);
    assert.equal(await p.next(), null);
  });

  it("a listener limited to list denies shutdown and stays usable", async () => {
    const p = await RawPeer.open(limited());
    assert.deepEqual(await p.handshake(), { connect_ack: null });
    p.send(`{"request":"shutdown"}`);
    assert.deepEqual(await p.next(), { response: { permission_denied: "shutdown" } });
    p.send(`{"request":"list"}`);
    assert.deepEqual(await p.next(), { response: { list: [] } });
    p.close();
  });
});
