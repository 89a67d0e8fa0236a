import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { connect } from "../../../src/client/index.js";
import { startInProcessDaemon, type TestDaemon } from "../../helpers/daemon.js";
import { RawPeer } from "../../helpers/raw.js";

describe("console limits and bad input", () => {
  let d: TestDaemon;
  before(async () => {
    d = await startInProcessDaemon(
      (dir) => `
[console.main.options]
max_request_size = 1024
max_requests_per_sec = 20
[console.second]
url = "unix://${dir}/second.sock"
permissions = "full"
`,
    );
  });
  after(() => d.stop());

  it("an over-long line closes only that connection", async () => {
    const victim = await RawPeer.open(d.url);
    const bystander = await RawPeer.open(d.url);
    await victim.handshake();
    await bystander.handshake();
    victim.send(`{"request":{"inspect":{"container":"${"a".repeat(2000)}:1.0.0"}}}`);
    assert.equal(await victim.next(), null);
    bystander.send(`{"request":"list"}`);
    assert.deepEqual(await bystander.next(), { response: { list: [] } });
    bystander.close();
  });

  it("answers malformed lines and unknown requests with an error and keeps the connection (Skiff dialect)", async () => {
    const p = await RawPeer.open(d.url);
    await p.handshake("0.9.2", false, "skiff");
    p.send("this is not json");
    const malformed = (await p.next()) as { response: { error: { invalid_arguments: { cause: string } } } };
    assert.match(malformed.response.error.invalid_arguments.cause, /malformed JSON/);
    p.send(`{"request":"frobnicate"}`);
    const unknown = (await p.next()) as { response: { error: { invalid_arguments: { cause: string } } } };
    assert.match(unknown.response.error.invalid_arguments.cause, /unknown request "frobnicate"/);
    p.send(`{"request":{"list":null,"x":1}}`);
    assert.ok(((await p.next()) as { response: { error: unknown } }).response.error);
    p.send(`{"connect":{"version":"0.9.2","subscribe_notifications":false}}`);
    assert.match(JSON.stringify(await p.next()), /expected a request, got connect/);
    p.send(`{"request":"list"}`);
    assert.deepEqual(await p.next(), { response: { list: [] } });
    p.close();
  });

  // How long the requests over the rate wait is not asserted here (no durations in tests): the
  // burst is over the rate, and every request still gets its own answer, in order.
  it("answers every request of a burst over the rate, in order", async () => {
    const p = await RawPeer.open(`unix://${d.dir}/skiff.sock`);
    await p.handshake();
    const count = 50;
    for (let i = 0; i < count; i++) p.send(`{"request":{"inspect":{"container":"c${i}:1.0.0"}}}`);
    for (let i = 0; i < count; i++) {
      const r = (await p.next()) as { response: { inspect: { error: { container: string } } } };
      assert.equal(r.response.inspect.error.container, `c${i}:1.0.0`);
    }
    p.close();
  });

  it("50 concurrent clients each get their own answers", async () => {
    const clients = await Promise.all(
      Array.from({ length: 50 }, () => connect(`unix://${d.dir}/second.sock`)),
    );
    const answers = await Promise.all(
      clients.map(async (c, i) => {
        const results: string[] = [];
        for (let round = 0; round < 5; round++) {
          const err = await c.inspect(`client${i}-r${round}:1.0.0`).then(
            () => "unexpected success",
            (e: Error) => e.message,
          );
          results.push(err);
        }
        return results;
      }),
    );
    answers.forEach((results, i) =>
      results.forEach((msg, round) => assert.match(msg, new RegExp(`client${i}-r${round}:1\\.0\\.0`))),
    );
    clients.forEach((c) => c.close());
  });
});
