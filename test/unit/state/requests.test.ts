import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { initialState } from "../../../src/daemon/state/model.js";
import { EXTERN_IDENT, handleRequest } from "../../../src/daemon/state/requests.js";
import type { Peer } from "../../../src/daemon/events/types.js";

const host: Peer = { kind: "extern", address: "test" };
const noReply = (): void => undefined;

describe("request transitions", () => {
  it("ident answers the peer's identity", () => {
    const s = initialState([]);
    assert.deepEqual(handleRequest(s, host, { type: "ident" }, noReply, 0).steps, [
      { type: "reply", response: { type: "ident", container: EXTERN_IDENT } },
    ]);
    const fromContainer = handleRequest(
      s,
      { kind: "container", container: "a:1.0.0" },
      { type: "ident" },
      noReply,
      0,
    );
    assert.deepEqual(fromContainer.steps[0], {
      type: "reply",
      response: { type: "ident", container: "a:1.0.0" },
    });
  });

  it("repositories are sorted ids; list is empty without packages", () => {
    const s = initialState([
      { id: "mem", keyed: false },
      { id: "default", keyed: false },
    ]);
    assert.deepEqual(handleRequest(s, host, { type: "repositories" }, noReply, 0).steps[0], {
      type: "reply",
      response: { type: "repositories", repositories: ["default", "mem"] },
    });
    assert.deepEqual(handleRequest(s, host, { type: "list" }, noReply, 0).steps[0], {
      type: "reply",
      response: { type: "list", containers: [] },
    });
  });

  it("inspect of an unknown container is invalid_container", () => {
    const t = handleRequest(initialState([]), host, { type: "inspect", container: "x:1.0.0" }, noReply, 0);
    assert.deepEqual(t.steps[0], {
      type: "reply",
      response: {
        type: "inspect",
        result: {
          type: "error",
          container: "x:1.0.0",
          error: { type: "invalid_container", container: "x:1.0.0" },
        },
      },
    });
  });

  it("shutdown replies, marks the state and asks for shutdown once", () => {
    const first = handleRequest(initialState([]), host, { type: "shutdown" }, noReply, 0);
    assert.equal(first.state.shuttingDown, true);
    assert.deepEqual(first.steps, [
      { type: "reply", response: { type: "shutdown" } },
      { type: "shutdown", reason: { kind: "request" } },
    ]);
    const again = handleRequest(first.state, host, { type: "shutdown" }, noReply, 0);
    assert.deepEqual(again.steps, [{ type: "reply", response: { type: "shutdown" } }]);
  });
});
