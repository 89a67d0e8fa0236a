import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ioArgs } from "../../../src/daemon/monitor/client.js";

describe("monitor io flags", () => {
  it("passes per-stream modes as --io-stdout and --io-stderr", () => {
    assert.deepEqual(ioArgs({ stdout: "discard", stderr: "inherit" }), [
      "--io-stdout",
      "discard",
      "--io-stderr",
      "inherit",
    ]);
  });
});
