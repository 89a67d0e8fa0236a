import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ioArgs } from "../../../src/daemon/monitor/client.js";

describe("monitor io flags", () => {
  it("passes a single mode as the same mode for both streams, the old `pipe` as `inherit`", () => {
    assert.deepEqual(ioArgs("pipe"), ["--io-stdout", "inherit", "--io-stderr", "inherit"]);
    assert.deepEqual(ioArgs("discard"), ["--io-stdout", "discard", "--io-stderr", "discard"]);
  });

  it("passes per-stream modes as --io-stdout and --io-stderr", () => {
    assert.deepEqual(ioArgs({ stdout: "discard", stderr: "inherit" }), [
      "--io-stdout",
      "discard",
      "--io-stderr",
      "inherit",
    ]);
  });
});
