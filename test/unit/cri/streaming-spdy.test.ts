// The CRI streaming server's pure parts: SPDY/3.1 frames and header blocks, the header
// compression against zlib, the one-time tokens, the remote command status documents.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { constants, createDeflate } from "node:zlib";
import { parseLogLine } from "../../../src/cri/streaming/attach.js";
import { statusDocument, exitCodeOf } from "../../../src/cri/streaming/remotecommand.js";
import {
  FrameDecoder,
  FrameError,
  HeaderDeflater,
  HeaderInflater,
  SPDY3_DICTIONARY,
  adler32,
  encode,
  parseHeaderBlock,
  serializeHeaderBlock,
  type Frame,
} from "../../../src/cri/streaming/spdy.js";
import { TokenCache } from "../../../src/cri/streaming/tokens.js";

function decodeAll(bytes: Buffer, chunk = bytes.length): Frame[] {
  const decoder = new FrameDecoder();
  const frames: Frame[] = [];
  for (let at = 0; at < bytes.length; at += chunk) {
    decoder.push(bytes.subarray(at, at + chunk));
    for (let f = decoder.next(); f !== undefined; f = decoder.next()) frames.push(f);
  }
  return frames;
}

/** Deflates blocks as real SPDY peers do: one zlib stream with the dictionary, sync-flushed. */
function realDeflater(): (block: Buffer) => Promise<Buffer> {
  const z = createDeflate({ dictionary: SPDY3_DICTIONARY });
  return (block) =>
    new Promise((resolve) => {
      const out: Buffer[] = [];
      const onData = (d: Buffer): number => out.push(d);
      z.on("data", onData);
      z.write(block);
      z.flush(constants.Z_SYNC_FLUSH, () => {
        z.off("data", onData);
        resolve(Buffer.concat(out));
      });
    });
}

void describe("SPDY frames", () => {
  void it("round-trips every frame type, whole or byte by byte", () => {
    const bytes = Buffer.concat([
      encode.synStream(1, Buffer.from("hb"), { fin: true, unidirectional: true, priority: 3 }),
      encode.synReply(1, Buffer.from("r")),
      encode.data(1, Buffer.from("payload"), true),
      encode.rstStream(3, 5),
      encode.settings([{ flags: 1, id: 7, value: 65536 }]),
      encode.ping(2),
      encode.goaway(9, 1),
      encode.windowUpdate(1, 1000),
    ]);
    const expected: Frame[] = [
      {
        type: "syn_stream",
        streamId: 1,
        associatedId: 0,
        priority: 3,
        fin: true,
        unidirectional: true,
        headerBlock: Buffer.from("hb"),
      },
      { type: "syn_reply", streamId: 1, fin: false, headerBlock: Buffer.from("r") },
      { type: "data", streamId: 1, fin: true, data: Buffer.from("payload") },
      { type: "rst_stream", streamId: 3, status: 5 },
      { type: "settings", entries: [{ flags: 1, id: 7, value: 65536 }] },
      { type: "ping", id: 2 },
      { type: "goaway", lastGoodStreamId: 9, status: 1 },
      { type: "window_update", streamId: 1, delta: 1000 },
    ];
    assert.deepEqual(decodeAll(bytes), expected);
    assert.deepEqual(decodeAll(bytes, 1), expected);
  });

  void it("refuses an oversized frame from its header, before its payload arrived", () => {
    const decoder = new FrameDecoder({ maxDataPayload: 1024, maxHeaderBlock: 64, maxSettings: 2 });
    decoder.push(Buffer.from([0, 0, 0, 1, 0, 0, 0x04, 0x01])); // data, 1025 bytes announced
    assert.throws(() => decoder.next(), FrameError);
    const syn = new FrameDecoder({ maxDataPayload: 1024, maxHeaderBlock: 64, maxSettings: 2 });
    syn.push(encode.synStream(1, Buffer.alloc(65)).subarray(0, 8));
    assert.throws(() => syn.next(), /exceed the limit/);
  });

  void it("refuses another SPDY version and malformed fixed-size frames; unknown types are reported", () => {
    const v2 = encode.ping(1);
    v2.writeUInt16BE(0x8002, 0);
    assert.throws(() => decodeAll(v2), /version 2/);
    assert.throws(() => decodeAll(encode.raw(6, 0, Buffer.alloc(3))), /PING/);
    assert.throws(() => decodeAll(encode.raw(4, 0, Buffer.from([0, 0, 0, 2, 0, 0, 0, 0]))), /SETTINGS/);
    assert.deepEqual(decodeAll(encode.raw(77, 0, Buffer.alloc(2))), [{ type: "unknown", frameType: 77 }]);
  });
});

void describe("SPDY header blocks", () => {
  void it("serializes and parses names and multiple values", () => {
    const headers = new Map([
      ["streamtype", ["stdout"]],
      ["x-multi", ["a", "b"]],
    ]);
    assert.deepEqual(parseHeaderBlock(serializeHeaderBlock(headers)), headers);
  });

  void it("refuses too many pairs, truncation, upper-case names, duplicates and trailing bytes", () => {
    const many = serializeHeaderBlock(new Map(Array.from({ length: 65 }, (_, i) => [`h${i}`, ["v"]])));
    assert.throws(() => parseHeaderBlock(many), /65 pairs/);
    const block = serializeHeaderBlock(new Map([["port", ["80"]]]));
    assert.throws(() => parseHeaderBlock(block.subarray(0, block.length - 1)), /truncated/);
    assert.throws(() => parseHeaderBlock(Buffer.concat([block, Buffer.from([0])])), /trailing/);
    const upper = Buffer.from(block);
    upper.write("P", 8);
    assert.throws(() => parseHeaderBlock(upper), /lower case/);
    const dup = Buffer.concat([Buffer.from([0, 0, 0, 2]), block.subarray(4), block.subarray(4)]);
    assert.throws(() => parseHeaderBlock(dup), /duplicate/);
  });

  void it("has the SPDY/3 dictionary (1423 bytes, the Adler-32 every implementation checks)", () => {
    assert.equal(SPDY3_DICTIONARY.length, 1423);
    assert.equal(adler32(SPDY3_DICTIONARY), 0xe3c6a7c2);
    assert.equal(adler32(Buffer.from("Wikipedia")), 0x11e60398);
  });

  void it("inflates what zlib deflates with the dictionary, block after block", async () => {
    const deflate = realDeflater();
    const inflater = new HeaderInflater();
    for (const type of ["error", "stdin", "stdout"]) {
      const block = serializeHeaderBlock(new Map([["streamtype", [type]]]));
      assert.deepEqual(await inflater.inflate(await deflate(block)), block);
    }
    inflater.close();
  });

  void it("writes stored blocks any zlib inflater reads with the dictionary", async () => {
    const deflater = new HeaderDeflater();
    const inflater = new HeaderInflater();
    for (const block of [serializeHeaderBlock(new Map()), serializeHeaderBlock(new Map([["a", ["b"]]]))])
      assert.deepEqual(await inflater.inflate(deflater.deflate(block)), block);
    inflater.close();
  });

  void it("stops inflating past its limit (a compression bomb) and refuses corrupt input", async () => {
    const bomb = await realDeflater()(Buffer.alloc(1024 * 1024));
    assert.ok(bomb.length < 4096);
    await assert.rejects(
      new HeaderInflater({ maxInflated: 64 * 1024, maxPairs: 64 }).inflate(bomb),
      /over 65536/,
    );
    const corrupt = new HeaderInflater();
    await assert.rejects(corrupt.inflate(Buffer.from("not zlib at all")), FrameError);
    await assert.rejects(corrupt.inflate(Buffer.from([0x78, 0xbb])), FrameError, "unusable after a failure");
  });
});

void describe("streaming tokens", () => {
  void it("are taken once, expire, and are bounded", () => {
    let now = 1000;
    const tokens = new TokenCache<string>({ ttlMs: 30_000, max: 2, now: () => now });
    const a = tokens.insert("a")!;
    assert.match(a, /^[A-Za-z0-9_-]{22}$/);
    assert.equal(tokens.take(a), "a");
    assert.equal(tokens.take(a), undefined, "single use");
    assert.equal(tokens.take("unknown"), undefined);
    const b = tokens.insert("b")!;
    tokens.insert("c");
    assert.equal(tokens.insert("d"), undefined, "at most 2 outstanding");
    now += 30_000;
    assert.equal(tokens.take(b), undefined, "expired");
    assert.ok(tokens.insert("e") !== undefined, "expired tokens free their slots");
  });
});

void describe("remote command status", () => {
  void it("writes metav1.Status as the kubelet does", () => {
    assert.deepEqual(statusDocument({ code: 0 }), { metadata: {}, status: "Success" });
    const failed = statusDocument({ code: 2 });
    assert.equal(failed.reason, "NonZeroExitCode");
    assert.deepEqual(failed.details, { causes: [{ reason: "ExitCode", message: "2" }] });
    assert.equal(statusDocument({ error: "boom" }).reason, "InternalError");
    assert.equal(exitCodeOf({ type: "signalled", signal: 9 }), 137);
    assert.equal(exitCodeOf({ type: "exit", code: 1 }), 1);
  });
});

void describe("attach log lines", () => {
  void it("reads the monitor's format and CRI's, each only as itself", () => {
    const at = "2026-12-07T04:00:00.000Z";
    assert.deepEqual(parseLogLine(`${at} stdout hello world`, "monitor"), {
      stream: "stdout",
      text: "hello world",
      newline: true,
    });
    assert.deepEqual(parseLogLine(`${at} stdout F oo`, "monitor"), {
      stream: "stdout",
      text: "F oo",
      newline: true,
    });
    assert.deepEqual(parseLogLine(`${at} stderr`, "monitor"), { stream: "stderr", text: "", newline: true });
    assert.deepEqual(parseLogLine(`${at} stdout P part`, "cri"), {
      stream: "stdout",
      text: "part",
      newline: false,
    });
    assert.deepEqual(parseLogLine(`${at} stderr F`, "cri"), { stream: "stderr", text: "", newline: true });
    assert.equal(parseLogLine(`${at} stdout no tag`, "cri"), undefined);
    assert.equal(parseLogLine(`${at} other text`, "monitor"), undefined);
    assert.equal(parseLogLine("garbage", "monitor"), undefined);
  });
});
