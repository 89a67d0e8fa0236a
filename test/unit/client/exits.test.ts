import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SeenExits } from "../../../src/client/index.js";
import { decodeMessage, encodeMessage } from "../../../src/protocol/codec.js";
import type { Message } from "../../../src/protocol/messages.js";

const C = "web:1.0.0";
const ID = "6ecf79ea-32ed-4911-a1b2-d0bd630ff74c";

describe("exit notifications carry the instance id", () => {
  it("inside the status object, beside reason and oom, where a Northstar client ignores it", () => {
    const message: Message = {
      type: "notification",
      notification: {
        type: "exit",
        container: C,
        status: { type: "exit", code: 3, reason: "shutdown" },
        instance: ID,
      },
    };
    const line = encodeMessage(message);
    assert.equal(
      line,
      `{"notification":{"exit":["${C}",{"exit":{"code":3,"reason":"shutdown","instance":"${ID}"}}]}}\n`,
    );
    assert.deepEqual(decodeMessage(line), message);
  });

  it("an exit without an instance (a Northstar daemon) decodes without one", () => {
    const decoded = decodeMessage(`{"notification":{"exit":["${C}",{"signalled":{"signal":9}}]}}`);
    assert.deepEqual(decoded, {
      type: "notification",
      notification: { type: "exit", container: C, status: { type: "signalled", signal: 9 } },
    });
  });

  it("a malformed instance id is refused with its path", () => {
    assert.throws(
      () => decodeMessage(`{"notification":{"exit":["${C}",{"exit":{"code":0,"instance":"a b"}}]}}`),
      /notification\.exit\[1\]\.exit\.instance/,
    );
  });
});

describe("SeenExits", () => {
  it("says first time once per instance", () => {
    const seen = new SeenExits();
    assert.equal(seen.firstTime("a"), true);
    assert.equal(seen.firstTime("b"), true);
    assert.equal(seen.firstTime("a"), false);
  });

  it("forgets the oldest identities beyond its capacity", () => {
    const seen = new SeenExits(2);
    seen.firstTime("a");
    seen.firstTime("b");
    seen.firstTime("c");
    assert.equal(seen.firstTime("c"), false);
    assert.equal(seen.firstTime("a"), true, "a was forgotten");
  });
});
