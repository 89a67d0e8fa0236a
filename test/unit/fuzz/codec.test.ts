// Property-based tests of the console codec: any line decodes to a message or throws
// DecodeError (never anything else), and every valid message survives encode/decode unchanged.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { DecodeError, decodeMessage, encodeMessage } from "../../../src/protocol/codec.js";
import type { Message, Request } from "../../../src/protocol/messages.js";

/** Bounded: a few hundred runs each keep the whole file at a few seconds. */
const RUNS = { numRuns: 300 };

function decodesOrDecodeError(line: string): Message | undefined {
  try {
    return decodeMessage(line);
  } catch (e) {
    assert.ok(
      e instanceof DecodeError,
      `decodeMessage(${JSON.stringify(line).slice(0, 200)}) threw ${String(e)}`,
    );
    return undefined;
  }
}

/** fast-check may build null-prototype objects; the codec builds plain ones. Same data either way. */
const plain = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;

const name = fc.stringMatching(/^[a-z0-9][a-z0-9._-]{0,15}$/);
const version = fc
  .tuple(fc.nat(20), fc.nat(20), fc.nat(20))
  .map(([major, minor, patch]) => `${major}.${minor}.${patch}`);
const container = fc.tuple(name, version).map(([n, v]) => `${n}:${v}`);
const text = fc.string({ maxLength: 20 }).filter((s) => !s.includes("\0"));
const u32 = fc.nat(0xffff_ffff);
const base64 = fc.uint8Array({ maxLength: 16 }).map((bytes) => Buffer.from(bytes).toString("base64"));

/** Requests as the model holds them; optional fields absent or present. */
const request: fc.Arbitrary<Request> = fc.oneof(
  fc.constantFrom<Request>(
    { type: "ident" },
    { type: "list" },
    { type: "repositories" },
    { type: "shutdown" },
    { type: "health" },
  ),
  fc.record({ type: fc.constant("inspect" as const), container }),
  fc.record({ type: fc.constant("install" as const), repository: name, size: fc.nat() }),
  fc.record({ type: fc.constant("kill" as const), container, signal: fc.integer({ min: -64, max: 64 }) }),
  fc.record({ type: fc.constant("mount" as const), containers: fc.array(container, { maxLength: 4 }) }),
  fc.record({ type: fc.constant("umount" as const), containers: fc.array(container, { maxLength: 4 }) }),
  fc.record({
    type: fc.constant("start" as const),
    container,
    init: fc.option(text, { nil: null }),
    arguments: fc.array(text, { maxLength: 4 }),
    environment: fc.dictionary(text, text, { maxKeys: 4 }),
  }),
  fc.record({ type: fc.constant("uninstall" as const), container, wipe: fc.boolean() }),
  fc.record(
    { type: fc.constant("stop" as const), container, timeout: u32 },
    { requiredKeys: ["type", "container"] },
  ),
  fc.record(
    { type: fc.constant("logs" as const), container, lines: u32, offset: u32 },
    { requiredKeys: ["type", "container"] },
  ),
  fc.record({ type: fc.constant("token_create" as const), target: text, shared: base64 }),
  fc.record(
    { type: fc.constant("suspend" as const), container, max_sleep_ms: u32 },
    { requiredKeys: ["type", "container"] },
  ),
  fc.record({
    type: fc.constant("add_wake_source" as const),
    container,
    name: text,
    source: fc.oneof(
      fc.record({ type: fc.constant("path" as const), path: text }),
      fc.record({ type: fc.constant("proxy" as const), channel: text }),
    ),
  }),
  fc.record({ type: fc.constant("power" as const), container }),
  fc.record({ type: fc.constant("prepare" as const), container }),
);

const message: fc.Arbitrary<Message> = fc.oneof(
  request.map((r): Message => ({ type: "request", request: r })),
  fc.constant<Message>({ type: "connect_ack" }),
  fc
    .record({ version: text, subscribe_notifications: fc.boolean() })
    .map((connect): Message => ({ type: "connect", connect })),
);

/** Replaces, drops or inserts characters of a line at random positions. */
const mutatedLine = fc
  .tuple(message, fc.array(fc.tuple(fc.nat(), fc.nat(2), fc.string({ maxLength: 3 })), { maxLength: 4 }))
  .map(([m, edits]) => {
    let line = encodeMessage(m).trimEnd();
    for (const [at, kind, insert] of edits) {
      const i = line.length === 0 ? 0 : at % line.length;
      if (kind === 0) line = line.slice(0, i) + insert + line.slice(i + 1);
      else if (kind === 1) line = line.slice(0, i);
      else line = line.slice(0, i) + insert + line.slice(i);
    }
    return line;
  });

describe("console codec properties", () => {
  it("decodes any string to a message or a DecodeError", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 200 }), (s) => void decodesOrDecodeError(s)),
      RUNS,
    );
  });

  it("decodes any JSON document, and any JSON under a message key, to a message or a DecodeError", () => {
    const key = fc.constantFrom(
      "connect",
      "connect_ack",
      "connect_nack",
      "request",
      "response",
      "notification",
    );
    fc.assert(
      fc.property(fc.json(), (s) => void decodesOrDecodeError(s)),
      RUNS,
    );
    fc.assert(
      fc.property(key, fc.jsonValue(), (k, v) => void decodesOrDecodeError(JSON.stringify({ [k]: v }))),
      RUNS,
    );
    fc.assert(
      fc.property(
        fc.jsonValue(),
        (v) => void decodesOrDecodeError(JSON.stringify({ request: { start: v } })),
      ),
      RUNS,
    );
  });

  it("decodes any JSON body of every request (and response) variant to a message or a DecodeError", () => {
    const variants = [
      ...["ident", "inspect", "install", "kill", "list", "mount", "repositories", "shutdown", "start"],
      ...[
        "token_create",
        "token_verify",
        "umount",
        "uninstall",
        "stop",
        "logs",
        "pause",
        "resume",
        "suspend",
      ],
      ...[
        "wake_lock_acquire",
        "wake_lock_release",
        "add_wake_source",
        "remove_wake_source",
        "proxy_wake_channel",
      ],
      ...["proxy_handled", "power", "prepare", "health", "bogus", "__proto__", "constructor"],
    ];
    const body = fc.oneof(
      fc.jsonValue({ maxDepth: 3 }),
      fc.dictionary(
        fc.constantFrom("container", "name", "timeout", "signal", "source", "size"),
        fc.jsonValue(),
        {
          maxKeys: 4,
        },
      ),
    );
    fc.assert(
      fc.property(
        fc.constantFrom("request", "response"),
        fc.constantFrom(...variants),
        body,
        (kind, variant, v) => {
          const m = decodesOrDecodeError(JSON.stringify({ [kind]: { [variant]: v } }));
          if (m !== undefined) assert.deepEqual(decodeMessage(encodeMessage(m).trimEnd()), m);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it("refuses deeply nested JSON with a DecodeError, without recursing into it", () => {
    const deep = "[".repeat(100_000) + "]".repeat(100_000);
    for (const line of [deep, `{"request":${deep}}`, `{"request":{"start":{"environment":${deep}}}}`]) {
      assert.equal(decodesOrDecodeError(line), undefined);
    }
  });

  it("decodes mutated valid lines to a message or a DecodeError; what decodes re-encodes to itself", () => {
    fc.assert(
      fc.property(mutatedLine, (line) => {
        const m = decodesOrDecodeError(line);
        if (m !== undefined) assert.deepEqual(decodeMessage(encodeMessage(m)), m);
      }),
      RUNS,
    );
  });

  it("round-trips generated valid messages", () => {
    fc.assert(
      fc.property(message, (m) => {
        const line = encodeMessage(m);
        assert.ok(line.endsWith("\n") && !line.slice(0, -1).includes("\n"));
        assert.deepEqual(decodeMessage(line.trimEnd()), plain(m));
      }),
      RUNS,
    );
  });
});
