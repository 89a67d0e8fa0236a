import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  BufferRefusedError,
  LineReader,
  LineTooLongError,
  type BufferAccount,
} from "../../../src/protocol/framing.js";

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

  it("splits a line spread over many chunks and keeps what follows it", async () => {
    const parts = Array.from({ length: 100 }, (_, i) => String(i % 10));
    const r = new LineReader(chunks(...parts, "\nnext", "\n"), 1000);
    assert.equal(await r.nextLine(), parts.join(""));
    assert.equal(r.buffered, 4);
    assert.equal(await r.nextLine(), "next");
    assert.equal(r.buffered, 0);
  });

  it("reports what it holds to its account and stops when growth is refused", async () => {
    const held: number[] = [];
    const account: BufferAccount = {
      hold: (bytes) => {
        held.push(bytes);
        return bytes <= 5;
      },
    };
    const r = new LineReader(chunks("ab\ncd", "ef", "gh", "ij\n"), 100, account);
    assert.equal(await r.nextLine(), "ab");
    assert.equal(held.at(-1), 2, "the rest after the line is held");
    await assert.rejects(r.nextLine(), BufferRefusedError);
    assert.deepEqual(held.slice(-2), [4, 6], "refused once the unfinished line grew past 5");
  });

  it("releases bytes to the account as they are handed out", async () => {
    const held: number[] = [];
    const r = new LineReader(chunks("x\n12345"), 100, { hold: (b) => (held.push(b), true) });
    assert.equal(await r.nextLine(), "x");
    await r.readBytes(5, async () => undefined);
    assert.equal(held.at(-1), 0);
  });
});
