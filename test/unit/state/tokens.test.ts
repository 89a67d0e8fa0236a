import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Peer } from "../../../src/daemon/events/types.js";
import { initialState } from "../../../src/daemon/state/model.js";
import { handleRequest, type TokenContext } from "../../../src/daemon/state/requests.js";
import {
  TOKEN_BYTES,
  createToken,
  newTokenKey,
  tokenIdentity,
  verifyToken,
  type TokenKey,
} from "../../../src/daemon/tokens.js";
import type { Response } from "../../../src/protocol/messages.js";

const START = 1_700_000_000_000;
const key: TokenKey = newTokenKey(START);
const VALIDITY = 60_000;
const shared = Buffer.from("hello");
const at = (seconds: number): number => START + seconds * 1000;

describe("tokens", () => {
  it("are 40 bytes: seconds since the daemon started, then the HMAC", () => {
    const token = createToken(key, at(125.7), "a", "b", shared);
    assert.equal(token.length, TOKEN_BYTES);
    assert.equal(token.readBigUInt64BE(0), 125n);
  });

  // Created at second 100 by "a" for "b" with "hello"; verified as below.
  const token = createToken(key, at(100), "a", "b", shared);
  const table: {
    what: string;
    now: number;
    user: string;
    target: string;
    shared: Buffer;
    token?: Buffer;
    expect: string;
  }[] = [
    { what: "as created", now: at(100), user: "a", target: "b", shared, expect: "Ok" },
    { what: "at the end of the validity", now: at(160.9), user: "a", target: "b", shared, expect: "Ok" },
    { what: "one second after it", now: at(161), user: "a", target: "b", shared, expect: "Expired" },
    { what: "before its creation", now: at(99), user: "a", target: "b", shared, expect: "Future" },
    { what: "with another user", now: at(100), user: "c", target: "b", shared, expect: "Invalid" },
    { what: "on another target", now: at(100), user: "a", target: "c", shared, expect: "Invalid" },
    {
      what: "with another shared part",
      now: at(100),
      user: "a",
      target: "b",
      shared: Buffer.from("XMPP"),
      expect: "Invalid",
    },
    {
      what: "with parts shifted between user and target",
      now: at(100),
      user: "ab",
      target: "",
      shared,
      expect: "Invalid",
    },
    {
      what: "with a changed HMAC",
      now: at(100),
      user: "a",
      target: "b",
      shared,
      token: Buffer.concat([token.subarray(0, 8), Buffer.alloc(32, 1)]),
      expect: "Invalid",
    },
    {
      // Northstar checks the time first: a forged time is answered before the HMAC is looked at.
      what: "with a time moved back (expired before the HMAC counts)",
      now: at(100),
      user: "a",
      target: "b",
      shared,
      token: Buffer.concat([Buffer.alloc(8), token.subarray(8)]),
      expect: "Expired",
    },
    {
      what: "with a time moved forward",
      now: at(100),
      user: "a",
      target: "b",
      shared,
      token: Buffer.concat([Buffer.from([0, 0, 0, 0, 0, 0, 1, 0]), token.subarray(8)]),
      expect: "Future",
    },
    {
      what: "when not 40 bytes",
      now: at(100),
      user: "a",
      target: "b",
      shared,
      token: token.subarray(0, 39),
      expect: "Invalid",
    },
  ];
  for (const row of table) {
    it(`verify ${row.what}: ${row.expect}`, () => {
      assert.equal(
        verifyToken(key, row.now, VALIDITY, row.token ?? token, row.user, row.target, row.shared),
        row.expect,
      );
    });
  }

  it("do not verify under another daemon's key", () => {
    assert.equal(verifyToken(newTokenKey(START), at(100), VALIDITY, token, "a", "b", shared), "Invalid");
  });

  it("identify a container by its name and a host client as extern", () => {
    assert.equal(tokenIdentity({ kind: "container", container: "token-client:0.0.1" }), "token-client");
    assert.equal(tokenIdentity({ kind: "extern" }), "extern");
  });
});

describe("token requests (ESR-01-012: A, B and C)", () => {
  const tokens: TokenContext = { key, validityMs: VALIDITY };
  const peer = (name: string): Peer => ({ kind: "container", container: `${name}:0.0.1` });
  const state = initialState([]);
  const answer = (from: Peer, request: Parameters<typeof handleRequest>[2], now = at(10)): Response => {
    const step = handleRequest(state, from, request, () => undefined, now, tokens).steps[0];
    assert.equal(step?.type, "reply");
    return (step as { response: Response }).response;
  };
  const create = (from: string, target: string, now = at(10)): string => {
    const response = answer(
      peer(from),
      { type: "token_create", target, shared: shared.toString("base64") },
      now,
    );
    assert.equal(response.type, "token");
    return (response as { token: string }).token;
  };
  const verify = (on: string, token: string, user: string, now = at(10)): unknown =>
    answer(peer(on), { type: "token_verify", token, user, shared: shared.toString("base64") }, now);

  it("B accepts A's token as A's", () => {
    assert.deepEqual(verify("b", create("a", "b"), "a"), { type: "token_verification", result: "Ok" });
  });

  it("B refuses A's token as C's, and C cannot verify a token made for B", () => {
    const token = create("a", "b");
    assert.deepEqual(verify("b", token, "c"), { type: "token_verification", result: "Invalid" });
    assert.deepEqual(verify("c", token, "a"), { type: "token_verification", result: "Invalid" });
  });

  it("C cannot make a token that B takes as A's", () => {
    const forged = create("c", "b");
    assert.deepEqual(verify("b", forged, "a"), { type: "token_verification", result: "Invalid" });
    assert.deepEqual(verify("b", forged, "c"), { type: "token_verification", result: "Ok" });
  });

  it("take the validity from the configuration and the time from the request", () => {
    const token = create("a", "b", at(10));
    assert.deepEqual(verify("b", token, "a", at(70)), { type: "token_verification", result: "Ok" });
    assert.deepEqual(verify("b", token, "a", at(71)), { type: "token_verification", result: "Expired" });
    assert.deepEqual(verify("b", token, "a", at(9)), { type: "token_verification", result: "Future" });
  });

  it("leave the state unchanged", () => {
    const t = handleRequest(
      state,
      peer("a"),
      { type: "token_create", target: "b", shared: "" },
      () => undefined,
      at(1),
      tokens,
    );
    assert.equal(t.state, state);
  });
});
