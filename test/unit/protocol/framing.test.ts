import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { LineReader, LineTooLongError } from "../../../src/protocol/framing.js";

async function* chunks(...parts: string[]): AsyncGenerator<Buffer> {
  for (const p of parts) yield Buffer.from(p);
}

describe("LineReader", () => {
  it("splits lines across chunk boundaries and returns a final unterminated line", async () => {
    const r = new LineReader(chunks("ab", "c\nde", "f\n\ngh"), 100);
    assert.equal(await r.nextLine(), "abc");
    assert.equal(await r.nextLine(), "def");
    assert.equal(await r.nextLine(), "");
    assert.equal(await r.nextLine(), "gh");
    assert.equal(await r.nextLine(), null);
  });

  it("rejects a line over the limit without waiting for its end", async () => {
    const r = new LineReader(chunks("x".repeat(11)), 10);
    await assert.rejects(r.nextLine(), LineTooLongError);
  });

  it("accepts a line of exactly the limit", async () => {
    const r = new LineReader(chunks("x".repeat(10) + "\n"), 10);
    assert.equal(await r.nextLine(), "x".repeat(10));
  });

  it("hands out raw bytes between lines", async () => {
    const r = new LineReader(chunks('{"a":1}\n12', "345", '6{"b":2}\n'), 100);
    assert.equal(await r.nextLine(), '{"a":1}');
    const got: Buffer[] = [];
    await r.readBytes(6, async (c) => void got.push(c));
    assert.equal(Buffer.concat(got).toString(), "123456");
    assert.equal(await r.nextLine(), '{"b":2}');
  });

  it("fails when the stream ends before the announced bytes", async () => {
    const r = new LineReader(chunks("12"), 100);
    await assert.rejects(
      r.readBytes(5, async () => undefined),
      /3 of 5 bytes missing/,
    );
  });
});
