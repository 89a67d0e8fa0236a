import assert from "node:assert/strict";
import { appendFileSync, mkdtempSync, renameSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import {
  MAX_LOG_BYTES,
  MAX_LOG_LINES,
  readLogSince,
  readLogTail,
} from "../../../src/daemon/containers/logs.js";

const root = mkdtempSync(join(tmpdir(), "skiff-logs-test-"));
after(() => rmSync(root, { recursive: true, force: true }));

/** Writes and rotates like native/monitor/logfile.c, without timestamps (the reader ignores them). */
class MonitorLog {
  readonly dir: string;
  constructor(private readonly files: number) {
    this.dir = mkdtempSync(join(root, "c"));
    writeFileSync(join(this.dir, "monitor.sock.not-a-log"), "ignored\n");
  }
  get path(): string {
    return join(this.dir, "container.log");
  }
  line(text: string): void {
    appendFileSync(this.path, `${text}\n`);
  }
  lines(prefix: string, count: number): string[] {
    const written = Array.from({ length: count }, (_, i) => `${prefix}${i}`);
    appendFileSync(this.path, written.map((l) => `${l}\n`).join(""));
    return written;
  }
  raw(bytes: string): void {
    appendFileSync(this.path, bytes);
  }
  rotate(): void {
    if (this.files === 0) {
      truncateSync(this.path, 0);
      return;
    }
    for (let i = this.files - 1; i >= 1; i--) {
      try {
        renameSync(`${this.path}.${i}`, `${this.path}.${i + 1}`);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
      }
    }
    renameSync(this.path, `${this.path}.1`);
    writeFileSync(this.path, "");
  }
}

describe("readLogTail", () => {
  it("answers nothing, and offset 0, when there is no log yet", async () => {
    assert.deepEqual(await readLogTail(join(root, "missing"), 10), { lines: [], offset: 0 });
    const log = new MonitorLog(3);
    assert.deepEqual(await readLogTail(log.dir, 10), { lines: [], offset: 0 });
  });

  it("returns the last lines across rotated files, oldest first", async () => {
    const log = new MonitorLog(3);
    const first = log.lines("a", 3);
    log.rotate();
    const second = log.lines("b", 3);
    log.rotate();
    const third = log.lines("c", 2);
    assert.deepEqual((await readLogTail(log.dir, 4)).lines, ["b1", "b2", "c0", "c1"]);
    assert.deepEqual((await readLogTail(log.dir, 100)).lines, [...first, ...second, ...third]);
    assert.deepEqual((await readLogTail(log.dir, 0)).lines, []);
  });

  it("leaves out a trailing partial line until its newline is written", async () => {
    const log = new MonitorLog(3);
    log.raw("one\ntw");
    const tail = await readLogTail(log.dir, 10);
    assert.deepEqual(tail.lines, ["one"]);
    assert.deepEqual((await readLogSince(log.dir, tail.offset)).lines, []);
    log.raw("o\n");
    assert.deepEqual((await readLogSince(log.dir, tail.offset)).lines, ["two"]);
  });

  it("keeps empty lines and lines longer than a read chunk", async () => {
    const log = new MonitorLog(3);
    const long = "x".repeat(200_000);
    log.raw(`\n${long}\n\nend\n`);
    assert.deepEqual((await readLogTail(log.dir, 10)).lines, ["", long, "", "end"]);
    assert.deepEqual((await readLogSince(log.dir, 0)).lines, ["", long, "", "end"]);
  });

  it(`caps one answer at ${MAX_LOG_LINES} lines and ${MAX_LOG_BYTES} bytes`, async () => {
    const many = new MonitorLog(3);
    const written = many.lines("n", MAX_LOG_LINES + 5);
    assert.deepEqual((await readLogTail(many.dir, MAX_LOG_LINES * 2)).lines, written.slice(5));

    const big = new MonitorLog(3);
    const lines = Array.from({ length: 200 }, (_, i) => `${String(i).padStart(3, "0")}${"y".repeat(8189)}`);
    lines.forEach((l) => big.line(l));
    const fitting = Math.floor(MAX_LOG_BYTES / 8193);
    assert.deepEqual((await readLogTail(big.dir, 200)).lines, lines.slice(200 - fitting));
  });

  it("rejects a negative line count", async () => {
    await assert.rejects(readLogTail(root, -1), RangeError);
  });
});

describe("readLogSince", () => {
  it("follows from offset 0 on a log that does not exist yet", async () => {
    const log = new MonitorLog(3);
    let slice = await readLogSince(log.dir, 0);
    assert.deepEqual(slice, { lines: [], offset: 0 });
    const written = log.lines("l", 3);
    slice = await readLogSince(log.dir, slice.offset);
    assert.deepEqual(slice.lines, written);
    assert.ok(Number.isSafeInteger(slice.offset) && slice.offset > 0);
    assert.deepEqual((await readLogSince(log.dir, slice.offset)).lines, []);
  });

  it("loses and repeats nothing when the log rotates between two calls", async () => {
    const log = new MonitorLog(3);
    log.lines("a", 2);
    let { offset } = await readLogTail(log.dir, 10);
    const beforeRotation = log.lines("b", 2);
    log.rotate();
    const afterRotation = log.lines("c", 2);
    let slice = await readLogSince(log.dir, offset);
    assert.deepEqual(slice.lines, [...beforeRotation, ...afterRotation]);
    offset = slice.offset;

    // Two more rotations in one interval, and a call exactly at a rotation with an empty new file.
    const d = log.lines("d", 1);
    log.rotate();
    const e = log.lines("e", 1);
    log.rotate();
    slice = await readLogSince(log.dir, offset);
    assert.deepEqual(slice.lines, [...d, ...e]);
    const f = log.lines("f", 2);
    slice = await readLogSince(log.dir, slice.offset);
    assert.deepEqual(slice.lines, f);
  });

  it("skips a partial line left at the end of a rotated file", async () => {
    const log = new MonitorLog(2);
    log.line("kept");
    const { offset } = await readLogTail(log.dir, 0);
    log.raw("torn");
    log.rotate();
    log.line("next");
    assert.deepEqual((await readLogSince(log.dir, offset)).lines, ["next"]);
  });

  it("continues from the oldest line kept when the follower's file was rotated away", async () => {
    const log = new MonitorLog(1);
    log.lines("a", 2);
    const { offset } = await readLogTail(log.dir, 10);
    log.lines("lost", 1);
    log.rotate();
    log.lines("b", 1);
    log.rotate();
    const kept = [...log.lines("c", 1)];
    assert.deepEqual((await readLogSince(log.dir, offset)).lines, ["b0", ...kept]);
  });

  it("starts over when a log without rotated files is truncated in place", async () => {
    const log = new MonitorLog(0);
    log.lines("a", 5);
    const { offset } = await readLogTail(log.dir, 10);
    log.rotate();
    const after = log.lines("b", 2);
    assert.deepEqual((await readLogSince(log.dir, offset)).lines, after);
  });

  it("hands out the rest of a large backlog over several calls", async () => {
    const log = new MonitorLog(3);
    const first = log.lines("p", MAX_LOG_LINES - 3);
    log.rotate();
    const second = log.lines("q", 10);
    const one = await readLogSince(log.dir, 0);
    assert.equal(one.lines.length, MAX_LOG_LINES);
    const two = await readLogSince(log.dir, one.offset);
    assert.deepEqual([...one.lines, ...two.lines], [...first, ...second]);

    const big = new MonitorLog(3);
    const line = "z".repeat(8000);
    const written = big.lines(line, 300);
    const received: string[] = [];
    let offset = 0;
    for (let calls = 0; calls < 10; calls++) {
      const slice = await readLogSince(big.dir, offset);
      assert.ok(slice.lines.reduce((n, l) => n + l.length + 1, 0) <= MAX_LOG_BYTES);
      received.push(...slice.lines);
      offset = slice.offset;
    }
    assert.deepEqual(received, written);
  });

  it("sees every line once while a writer appends and rotates concurrently", async () => {
    const log = new MonitorLog(100);
    const total = 2800;
    let written = 0;
    const writer = new Promise<void>((resolve) => {
      const tick = (): void => {
        for (let i = 0; i < 7 && written < total; i++) log.line(`w${written++}`);
        // Rotations are rare next to reads in practice (one per log size), here one per 50 writes.
        if (written % 350 === 0) log.rotate();
        if (written < total) setImmediate(tick);
        else resolve();
      };
      setImmediate(tick);
    });
    const received: string[] = [];
    let offset = 0;
    let writerDone = false;
    void writer.then(() => (writerDone = true));
    for (;;) {
      const finished = writerDone;
      const slice = await readLogSince(log.dir, offset);
      received.push(...slice.lines);
      offset = slice.offset;
      if (finished && slice.lines.length === 0) break;
    }
    assert.deepEqual(
      received,
      Array.from({ length: total }, (_, i) => `w${i}`),
    );
  });

  it("rejects offsets it could not have given out", async () => {
    await assert.rejects(readLogSince(root, -1), RangeError);
    await assert.rejects(readLogSince(root, 1.5), RangeError);
    await assert.rejects(readLogSince(root, 2 ** 53), RangeError);
    await assert.rejects(readLogSince(root, 12), RangeError);
  });
});
