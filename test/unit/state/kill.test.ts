import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { initialState } from "../../../src/daemon/state/model.js";
import { handleRequest } from "../../../src/daemon/state/requests.js";
import type { Peer } from "../../../src/daemon/events/types.js";
import type { Response } from "../../../src/protocol/messages.js";

const host: Peer = { kind: "extern", address: "test" };

/** The one response a kill request gets at once, whatever step carries it. */
function killAnswer(signal: number): Response {
  const steps = handleRequest(
    initialState([]),
    host,
    { type: "kill", container: "a:1.0.0", signal },
    () => {},
    0,
  ).steps as { response?: Response }[];
  assert.equal(steps.length, 1);
  return steps[0]!.response!;
}

describe("kill signal validation", () => {
  it("refuses 0, negative and out-of-range signals with invalid_arguments", () => {
    for (const signal of [0, -1, 65, 2 ** 31, 1.5]) {
      const response = killAnswer(signal);
      assert.ok(response.type === "kill" && response.result.type === "error", JSON.stringify(response));
      assert.equal(response.result.error.type, "invalid_arguments", `signal ${signal}`);
    }
  });

  it("checks the container only for a real signal", () => {
    for (const signal of [1, 9, 15, 64]) {
      const response = killAnswer(signal);
      assert.ok(response.type === "kill" && response.result.type === "error");
      assert.equal(response.result.error.type, "invalid_container", `signal ${signal}`);
    }
  });
});
