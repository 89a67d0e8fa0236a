import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  encodeFrame,
  FrameDecoder,
  MAX_FRAME_PAYLOAD,
  MonitorProtocolError,
  parseExitRecord,
  parseMonitorMessage,
} from "../../../src/daemon/monitor/protocol.js";

function rawFrame(payload: string | Buffer): Buffer {
  const body = typeof payload === "string" ? Buffer.from(payload) : payload;
  const header = Buffer.alloc(4);
  header.writeUInt32BE(body.length);
  return Buffer.concat([header, body]);
}

describe("monitor protocol frames", () => {
  it("encodes a 4-byte big-endian length followed by JSON", () => {
    const frame = encodeFrame({ type: "kill", signal: 15, all: false });
    const json = '{"type":"kill","signal":15,"all":false}';
    assert.equal(frame.readUInt32BE(0), json.length);
    assert.equal(frame.subarray(4).toString(), json);
  });

  it("decodes frames split at every byte boundary and several per chunk", () => {
    const stream = Buffer.concat([
      encodeFrame({ type: "init", pid: 42 }),
      encodeFrame({ type: "log", stream: "stdout", line: 'héllo \u0000 "x"' }),
      encodeFrame({ type: "started" }),
    ]);
    for (let split = 0; split <= stream.length; split++) {
      const decoder = new FrameDecoder();
      const values = [...decoder.push(stream.subarray(0, split)), ...decoder.push(stream.subarray(split))];
      assert.deepEqual(values, [
        { type: "init", pid: 42 },
        { type: "log", stream: "stdout", line: 'héllo \u0000 "x"' },
        { type: "started" },
      ]);
      assert.equal(decoder.buffered, 0);
    }
  });

  it("keeps an incomplete frame buffered", () => {
    const decoder = new FrameDecoder();
    const frame = encodeFrame({ type: "started" });
    assert.deepEqual(decoder.push(frame.subarray(0, 6)), []);
    assert.equal(decoder.buffered, 6);
  });

  it("rejects zero and oversized lengths", () => {
    const zero = Buffer.alloc(4);
    assert.throws(() => new FrameDecoder().push(zero), MonitorProtocolError);
    const big = Buffer.alloc(4);
    big.writeUInt32BE(MAX_FRAME_PAYLOAD + 1);
    assert.throws(() => new FrameDecoder().push(big), /invalid frame length/);
  });

  it("accepts a payload of exactly the maximum size and refuses to encode a larger one", () => {
    const padding = "x".repeat(MAX_FRAME_PAYLOAD - '{"type":"log","stream":"stdout","line":""}'.length);
    const frame = encodeFrame({ type: "log", stream: "stdout", line: padding });
    assert.equal(frame.length, 4 + MAX_FRAME_PAYLOAD);
    assert.equal(new FrameDecoder().push(frame).length, 1);
    assert.throws(() => encodeFrame({ type: "log", stream: "stdout", line: padding + "x" }), /exceeds/);
  });

  it("rejects a payload that is not JSON", () => {
    assert.throws(() => new FrameDecoder().push(rawFrame("{nope")), /not JSON/);
  });
});

describe("monitor protocol messages", () => {
  it("parses every monitor message type", () => {
    assert.deepEqual(parseMonitorMessage({ type: "hello", version: 1, pid: 7 }), {
      type: "hello",
      version: 1,
      pid: 7,
    });
    assert.deepEqual(parseMonitorMessage({ type: "state", state: "created", pid: 9 }), {
      type: "state",
      state: "created",
      pid: 9,
    });
    assert.deepEqual(parseMonitorMessage({ type: "state", state: "exited" }), {
      type: "state",
      state: "exited",
    });
    assert.deepEqual(parseMonitorMessage({ type: "killed", signal: 9 }), { type: "killed", signal: 9 });
    assert.deepEqual(parseMonitorMessage({ type: "error", op: "start", message: "m" }), {
      type: "error",
      op: "start",
      message: "m",
    });
    assert.deepEqual(
      parseMonitorMessage({
        type: "exit",
        id: "c",
        status: { signal: 15 },
        reason: "shutdown",
        initPid: 5,
        time: "2026-01-01T00:00:00.000Z",
      }),
      {
        type: "exit",
        id: "c",
        status: { signal: 15 },
        reason: "shutdown",
        initPid: 5,
        time: "2026-01-01T00:00:00.000Z",
      },
    );
  });

  it("parses memory counts and the exit record's oom", () => {
    const counts = { low: 0, high: 1, max: 2, oom: 3, oom_kill: 4, oom_group_kill: 5 };
    assert.deepEqual(parseMonitorMessage({ type: "memory", ...counts, extra: "ignored" }), {
      type: "memory",
      ...counts,
    });
    assert.throws(
      () => parseMonitorMessage({ type: "memory", ...counts, oom_kill: -1 }),
      /memory message\.oom_kill: expected a count/,
    );
    const { high: _high, ...withoutHigh } = counts;
    assert.throws(() => parseMonitorMessage({ type: "memory", ...withoutHigh }), /memory message\.high/);
    const exit = { id: "c", status: { signal: 9 }, reason: "shutdown", time: "t" };
    assert.deepEqual(parseExitRecord({ ...exit, oom: true }), { ...exit, oom: true });
    assert.deepEqual(parseExitRecord(exit), exit);
    assert.throws(
      () => parseExitRecord({ ...exit, oom: 1 }, "exit.json"),
      /exit\.json\.oom: expected a boolean/,
    );
  });

  it("names the offending field", () => {
    assert.throws(
      () => parseMonitorMessage({ type: "init", pid: "1" }),
      /init message\.pid: expected an integer/,
    );
    assert.throws(
      () => parseMonitorMessage({ type: "log", stream: "stdin", line: "" }),
      /log message\.stream/,
    );
    assert.throws(() => parseMonitorMessage({ type: "bogus" }), /unknown type "bogus"/);
    assert.throws(() => parseMonitorMessage([]), /expected a JSON object/);
  });

  it("validates exit records", () => {
    const base = { id: "c", reason: "error", time: "t", error: "runc: boom" };
    assert.deepEqual(parseExitRecord({ ...base, status: { code: 1 } }), { ...base, status: { code: 1 } });
    assert.throws(
      () => parseExitRecord({ ...base, status: { code: 1.5 } }, "exit.json"),
      /exit\.json\.status\.code/,
    );
    assert.throws(() => parseExitRecord({ ...base, reason: "crash", status: { code: 1 } }), /reason/);
  });
});
