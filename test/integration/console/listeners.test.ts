/**
 * The console's listeners as configured: a TCP listener serves the protocol with its own
 * permissions, and Unix sockets get their file mode (`0600` by default, `mode` when set).
 */
import assert from "node:assert/strict";
import { stat } from "node:fs/promises";
import { after, before, describe, it } from "node:test";
import { connect, PermissionDeniedError } from "../../../src/client/index.js";
import { startInProcessDaemon, type TestDaemon } from "../../helpers/daemon.js";

describe("console listeners", () => {
  let d: TestDaemon;
  before(async () => {
    d = await startInProcessDaemon(
      (dir) => `
[console.tcp]
url = "tcp://127.0.0.1:0"
permissions = ["list", "ident"]
[console.shared]
url = "unix://${dir}/shared.sock"
permissions = ["list"]
mode = "0660"
`,
    );
  });
  after(() => d.stop());

  it("a TCP listener serves requests within its permissions and refuses the rest", async () => {
    const url = d.runtime.console.address("tcp");
    assert.match(url ?? "", /^tcp:\/\/127\.0\.0\.1:\d+$/);
    assert.doesNotMatch(url!, /:0$/, "bound to a real port");
    const client = await connect(url!);
    try {
      assert.deepEqual(await client.list(), []);
      await assert.rejects(client.shutdown(), PermissionDeniedError);
      assert.deepEqual(await client.list(), [], "still usable after a refusal");
    } finally {
      client.close();
    }
  });

  it("Unix sockets get 0600 by default and the configured mode otherwise", async () => {
    const main = await stat(`${d.dir}/skiff.sock`);
    assert.ok(main.isSocket());
    assert.equal(main.mode & 0o777, 0o600);
    const shared = await stat(`${d.dir}/shared.sock`);
    assert.ok(shared.isSocket());
    assert.equal(shared.mode & 0o777, 0o660);
    // The mode is the one configured, and the socket works.
    const client = await connect(`unix://${d.dir}/shared.sock`);
    try {
      assert.deepEqual(await client.list(), []);
    } finally {
      client.close();
    }
  });
});
