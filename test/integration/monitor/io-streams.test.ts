import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { MonitorStreamsIo } from "../../../src/daemon/monitor/client.js";
import { createTestEnv, type TestEnv } from "./env.js";

const SCRIPT = "echo out1; echo err1 >&2; echo out2; echo err2 >&2";

describe("monitor: per-stream io modes", () => {
  let env: TestEnv;
  before(() => {
    env = createTestEnv();
  });
  after(() => env.cleanup());

  /** Runs SCRIPT; returns container.log as "<stream> <text>" lines (undefined if absent) and the LOG events. */
  async function run(name: string, io: MonitorStreamsIo) {
    const conn = await env.launch(name, ["sh", "-c", SCRIPT], { io });
    const events: string[] = [];
    conn.on("log", (stream, line) => events.push(`${stream} ${line}`));
    await conn.start();
    assert.deepEqual((await conn.exited()).status, { code: 0 });
    const path = join(env.stateDir(name), "container.log");
    const logged = existsSync(path)
      ? readFileSync(path, "utf8")
          .split("\n")
          .filter((l) => l !== "")
          .map((l) => l.split(" ").slice(1).join(" "))
      : undefined;
    env.forget(name);
    return { logged, events };
  }

  it("stdout discard, stderr pipe: only stderr lines in container.log, no LOG events", async () => {
    const { logged, events } = await run("err-only", { stdout: "discard", stderr: "pipe" });
    assert.deepEqual(logged, ["stderr err1", "stderr err2"]);
    assert.deepEqual(events, []);
  });

  it("stdout pipe, stderr discard: only stdout lines in container.log, no LOG events", async () => {
    const { logged, events } = await run("out-only", { stdout: "pipe", stderr: "discard" });
    assert.deepEqual(logged, ["stdout out1", "stdout out2"]);
    assert.deepEqual(events, []);
  });

  it("both discard: no container.log and no LOG events", async () => {
    const { logged, events } = await run("none", { stdout: "discard", stderr: "discard" });
    assert.equal(logged, undefined);
    assert.deepEqual(events, []);
  });

  it("inherit also sends LOG events, for that stream only", async () => {
    const { logged, events } = await run("mixed", { stdout: "inherit", stderr: "pipe" });
    assert.deepEqual(
      logged?.toSorted(),
      ["stderr err1", "stderr err2", "stdout out1", "stdout out2"],
      "both streams are in container.log",
    );
    assert.deepEqual(events, ["stdout out1", "stdout out2"]);
  });

  it("a discarded stderr still yields the runtime's error text when create fails", async () => {
    const conn = await env.launch(
      "broken",
      ["true"],
      { io: { stdout: "discard", stderr: "discard" } },
      (c) => (c.root.path = "/nonexistent-skiff-rootfs"),
    );
    await assert.rejects(conn.start());
    const record = await conn.exited();
    assert.equal(record.reason, "error");
    assert.match(record.error ?? "", /nonexistent-skiff-rootfs/);
    // The runtime's own text is logged even though both streams are discarded.
    assert.match(
      readFileSync(join(env.stateDir("broken"), "container.log"), "utf8"),
      / stderr .*nonexistent-skiff-rootfs/,
    );
    env.forget("broken");
  });
});
