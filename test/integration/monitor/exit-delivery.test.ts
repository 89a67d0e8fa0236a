import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createTestEnv, type TestEnv } from "./env.js";

const ROUNDS = Number(process.env.SKIFF_MONITOR_ROUNDS ?? 500);

describe("monitor: EXIT delivery", () => {
  let env: TestEnv;
  before(() => {
    env = createTestEnv();
  });
  after(() => env.cleanup());

  // Hundreds of runc lifecycles: about a minute on a loaded host, more than the 120 s per-test
  // default allows for in the VM lane or under heavier load.
  it(`delivers EXIT before EOF in ${ROUNDS} container lifecycles`, { timeout: 600_000 }, async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const name = `r${round}`;
      const conn = await env.launch(name, ["sh", "-c", `exit ${round % 256}`], {
        io: { stdout: "discard", stderr: "discard" },
      });
      const order: string[] = [];
      conn.on("exit", () => order.push("exit"));
      const closed = new Promise<void>((resolve) =>
        conn.on("close", (err) => {
          order.push(err ? `close ${err.message}` : "close");
          resolve();
        }),
      );
      await conn.start();
      const record = await conn.exited();
      await closed;
      assert.deepEqual(order, ["exit", "close"], `round ${round}`);
      assert.deepEqual(record.status, { code: round % 256 }, `round ${round}`);
      env.forget(name);
    }
  });
});
