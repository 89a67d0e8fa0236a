import assert from "node:assert/strict";
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { createTestEnv, type TestEnv } from "./env.js";

const LINE = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (stdout|stderr) (.*)$/;

function parseLog(path: string): { stream: string; text: string }[] {
  return readFileSync(path, "utf8")
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => {
      const m = LINE.exec(l);
      assert.ok(m, `malformed log line: ${l}`);
      return { stream: m[2]!, text: m[3]! };
    });
}

describe("monitor: container output", () => {
  let env: TestEnv;
  before(() => {
    env = createTestEnv();
  });
  after(() => env.cleanup());

  it("logs stdout and stderr line by line with stream names, in order per stream", async () => {
    const script = "echo out1; echo err1 >&2; echo out2; echo err2 >&2; echo; printf 'no newline'";
    const conn = await env.launch("streams", ["sh", "-c", script]);
    const messages: string[] = [];
    conn.on("log", (stream, line) => messages.push(`${stream} ${line}`));
    await conn.start();
    await conn.exited();
    const entries = parseLog(join(env.stateDir("streams"), "container.log"));
    const of = (stream: string) => entries.filter((e) => e.stream === stream).map((e) => e.text);
    assert.deepEqual(of("stdout"), ["out1", "out2", "", "no newline"]);
    assert.deepEqual(of("stderr"), ["err1", "err2"]);
    assert.deepEqual(
      messages.toSorted(),
      entries.map((e) => `${e.stream} ${e.text}`).toSorted(),
      "every logged line is also sent to the daemon",
    );
  });

  it("rotates container.log by size, keeping the configured number of files", async () => {
    const script = "i=0; while [ $i -lt 60 ]; do echo line-$i; i=$((i+1)); done";
    const conn = await env.launch("rotate", ["sh", "-c", script], { log: { maxBytes: 300, files: 2 } });
    await conn.start();
    await conn.exited();
    const dir = env.stateDir("rotate");
    for (const name of ["container.log", "container.log.1", "container.log.2"]) {
      assert.ok(statSync(join(dir, name)).size <= 300, `${name} exceeds max bytes`);
    }
    assert.equal(existsSync(join(dir, "container.log.3")), false);
    const texts = [
      ...parseLog(join(dir, "container.log.2")),
      ...parseLog(join(dir, "container.log.1")),
      ...parseLog(join(dir, "container.log")),
    ].map((e) => e.text);
    assert.equal(texts.at(-1), "line-59");
    const first = Number(texts[0]!.slice(5));
    assert.deepEqual(
      texts,
      Array.from({ length: 60 - first }, (_, i) => `line-${first + i}`),
      "rotated files hold a contiguous tail of the output",
    );
  });

  it("keeps every line of a burst of output in the log and still delivers EXIT", async () => {
    const script = "i=0; while [ $i -lt 5000 ]; do echo line-$i; i=$((i+1)); done; exit 5";
    const conn = await env.launch("burst", ["sh", "-c", script]);
    let received = 0;
    conn.on("log", () => received++);
    await conn.start();
    assert.deepEqual((await conn.exited()).status, { code: 5 });
    const texts = parseLog(join(env.stateDir("burst"), "container.log")).map((e) => e.text);
    assert.deepEqual(
      texts,
      Array.from({ length: 5000 }, (_, i) => `line-${i}`),
    );
    assert.ok(received > 0 && received <= 5000);
  });

  it("io discard writes no log and sends no LOG messages", async () => {
    const conn = await env.launch("discard", ["sh", "-c", "echo hidden; echo hidden >&2"], {
      io: { stdout: "discard", stderr: "discard" },
    });
    let logs = 0;
    conn.on("log", () => logs++);
    await conn.start();
    assert.deepEqual((await conn.exited()).status, { code: 0 });
    assert.equal(logs, 0);
    assert.equal(existsSync(join(env.stateDir("discard"), "container.log")), false);
  });
});
