import { PassThrough } from "node:stream";
import { test } from "node:test";
import assert from "node:assert/strict";
import { byteProgress, PROGRESS_THRESHOLD, showsProgress } from "../../../src/cli/progress.js";

/** A stream that says it is a terminal (or not), collecting what is written. */
function stream(isTTY: boolean): {
  stream: PassThrough & { isTTY?: boolean; columns?: number };
  text: () => string;
} {
  const s = new PassThrough() as PassThrough & { isTTY?: boolean; columns?: number };
  s.isTTY = isTTY;
  s.columns = 120;
  let text = "";
  s.on("data", (d: Buffer) => (text += d.toString()));
  return { stream: s, text: () => text };
}

const SIZE = 64 * 1024 * 1024;

test("a terminal gets a bar that reaches 100%", async () => {
  const out = stream(true);
  const bar = byteProgress("uploading", SIZE, { json: false, stream: out.stream });
  bar.update(SIZE / 2);
  bar.update(SIZE);
  bar.stop();
  bar.stop(); // twice is harmless
  await new Promise((r) => setImmediate(r));
  assert.match(out.text(), /uploading \[.*\] 100% 64\.0\/64\.0 MiB/);
});

test("silent when not a terminal, with --json, and for small files", async () => {
  for (const [isTTY, json, size] of [
    [false, false, SIZE],
    [true, true, SIZE],
    [true, false, PROGRESS_THRESHOLD - 1],
  ] as const) {
    const out = stream(isTTY);
    const bar = byteProgress("uploading", size, { json, stream: out.stream });
    bar.update(size);
    bar.stop();
    await new Promise((r) => setImmediate(r));
    assert.equal(out.text(), "", `isTTY ${isTTY}, json ${json}, size ${size}`);
  }
  assert.equal(showsProgress({ json: false, stream: stream(false).stream }), false);
  assert.equal(showsProgress({ json: true, stream: stream(true).stream }), false);
  assert.equal(showsProgress({ json: false, stream: stream(true).stream }), true);
});
