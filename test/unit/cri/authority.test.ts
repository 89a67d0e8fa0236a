// The CRI socket's :authority fix-up on hand-built HTTP/2 frames and HPACK blocks (RFC 7540,
// RFC 7541): what grpc-go sends when it dials a Unix socket by its path.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  AuthorityFrontError,
  RequestRewriter,
  SettingsRewriter,
  rewriteAuthority,
} from "../../../src/cri/authority.js";

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");

/** A raw (not Huffman) HPACK string literal; lengths below 127. */
const str = (s: string) => Buffer.concat([Buffer.from([s.length]), Buffer.from(s, "latin1")]);

function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(9);
  header.writeUIntBE(payload.length, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(stream, 5);
  return Buffer.concat([header, payload]);
}

/** The frames of a byte string: [type, flags, stream, payload]. */
function frames(bytes: Buffer): [number, number, number, Buffer][] {
  const out: [number, number, number, Buffer][] = [];
  for (let at = 0; at < bytes.length; ) {
    const length = bytes.readUIntBE(at, 3);
    out.push([
      bytes[at + 3]!,
      bytes[at + 4]!,
      bytes.readUInt32BE(at + 5),
      bytes.subarray(at + 9, at + 9 + length),
    ]);
    at += 9 + length;
  }
  return out;
}

// :method POST (static 3), :scheme http (static 6), :path literal-indexed name 4,
// :authority literal with incremental indexing, name index 1, then content-type never indexed
// with a literal name.
const PATH_AUTHORITY = Buffer.concat([
  Buffer.from([0x83, 0x86]),
  Buffer.from([0x44]),
  str("/runtime.v1.RuntimeService/Version"),
  Buffer.from([0x41]),
  str("/run/skiff/cri.sock"),
  Buffer.from([0x10]),
  str("content-type"),
  str("application/grpc"),
]);
const LOCALHOST_AUTHORITY = Buffer.concat([
  Buffer.from([0x83, 0x86]),
  Buffer.from([0x44]),
  str("/runtime.v1.RuntimeService/Version"),
  Buffer.from([0x41]),
  str("localhost"),
  Buffer.from([0x10]),
  str("content-type"),
  str("application/grpc"),
]);

void describe("the :authority rewrite of an HPACK block", () => {
  void it("replaces the authority's value, keeping every other field byte for byte", () => {
    assert.deepEqual(rewriteAuthority(PATH_AUTHORITY), LOCALHOST_AUTHORITY);
  });

  void it("keeps the field's indexing kind, and finds a literal :authority name too", () => {
    const without = Buffer.concat([Buffer.from([0x01]), str("/a/b")]); // without indexing, index 1
    assert.deepEqual(rewriteAuthority(without), Buffer.concat([Buffer.from([0x01]), str("localhost")]));
    const never = Buffer.concat([Buffer.from([0x10]), str(":authority"), str("/a/b")]);
    assert.deepEqual(rewriteAuthority(never), Buffer.concat([Buffer.from([0x11]), str("localhost")]));
    // A Huffman-coded value (high bit of its length) is replaced without being decoded.
    const huffman = Buffer.from([0x41, 0x83, 0xaa, 0xbb, 0xcc, 0x82]);
    assert.deepEqual(
      rewriteAuthority(huffman),
      Buffer.concat([Buffer.from([0x41]), str("localhost"), Buffer.from([0x82])]),
    );
  });

  void it("passes indexed fields, size updates and multi-byte integers through", () => {
    const block = Buffer.from([0x20, 0x3f, 0xe1, 0x1f, 0xbe, 0xff, 0x10]); // size 0, size 4096, index 62, index 143
    assert.deepEqual(rewriteAuthority(block), block);
  });

  void it("refuses what is not HPACK", () => {
    assert.throws(() => rewriteAuthority(Buffer.from([0x41, 0x10, 0x61])), AuthorityFrontError);
    assert.throws(
      () => rewriteAuthority(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff])),
      AuthorityFrontError,
    );
  });
});

void describe("the request side of a connection", () => {
  void it("passes the preface and other frames, rewrites a HEADERS block, across any chunking", () => {
    const settings = frame(0x4, 0, 0, Buffer.alloc(0));
    const headers = frame(0x1, 0x4, 1, PATH_AUTHORITY);
    const data = frame(0x0, 0x1, 1, Buffer.from([0, 0, 0, 0, 0]));
    const input = Buffer.concat([PREFACE, settings, headers, data]);
    const expected = Buffer.concat([PREFACE, settings, frame(0x1, 0x4, 1, LOCALHOST_AUTHORITY), data]);
    for (const size of [1, 7, 30, input.length]) {
      const rewriter = new RequestRewriter();
      const out: Buffer[] = [];
      for (let at = 0; at < input.length; at += size) out.push(rewriter.push(input.subarray(at, at + size)));
      assert.deepEqual(Buffer.concat(out), expected, `chunks of ${size}`);
    }
  });

  void it("joins CONTINUATIONs, drops padding, keeps PRIORITY and END_STREAM", () => {
    const priority = Buffer.from([0, 0, 0, 0, 15]);
    const padded = Buffer.concat([
      Buffer.from([3]),
      priority,
      PATH_AUTHORITY.subarray(0, 10),
      Buffer.alloc(3),
    ]);
    const input = Buffer.concat([
      PREFACE,
      frame(0x1, 0x1 | 0x8 | 0x20, 3, padded), // END_STREAM, PADDED, PRIORITY
      frame(0x9, 0x4, 3, PATH_AUTHORITY.subarray(10)),
    ]);
    const out = new RequestRewriter().push(input);
    assert.deepEqual(out.subarray(0, PREFACE.length), PREFACE);
    assert.deepEqual(frames(out.subarray(PREFACE.length)), [
      [0x1, 0x1 | 0x4 | 0x20, 3, Buffer.concat([priority, LOCALHOST_AUTHORITY])],
    ]);
  });

  void it("forwards a block that is not HPACK unchanged, and ends a connection over the limits", () => {
    const bad = frame(0x1, 0x4, 1, Buffer.from([0x41, 0x10]));
    assert.deepEqual(
      new RequestRewriter().push(Buffer.concat([PREFACE, bad])),
      Buffer.concat([PREFACE, bad]),
    );
    const rewriter = new RequestRewriter();
    rewriter.push(Buffer.concat([PREFACE, frame(0x1, 0, 1, Buffer.alloc(16_000))]));
    assert.throws(() => {
      for (let i = 0; i < 20; i++) rewriter.push(frame(0x9, 0, 1, Buffer.alloc(16_000)));
    }, /header block over/);
    const interrupted = new RequestRewriter();
    interrupted.push(Buffer.concat([PREFACE, frame(0x1, 0, 1, PATH_AUTHORITY)]));
    assert.throws(() => interrupted.push(frame(0x0, 0, 1, Buffer.alloc(5))), /interrupted by another frame/);
    const twice = new RequestRewriter();
    twice.push(Buffer.concat([PREFACE, frame(0x1, 0, 1, PATH_AUTHORITY)]));
    assert.throws(() => twice.push(frame(0x1, 0x4, 3, PATH_AUTHORITY)), /interrupted by another frame/);
    const padding = Buffer.concat([PREFACE, frame(0x1, 0x4 | 0x8, 1, Buffer.from([9, 0x82]))]);
    assert.throws(() => new RequestRewriter().push(padding), /padding longer than the frame/);
  });

  void it("streams other frames through as they arrive, of any size, byte by byte", () => {
    const big = frame(0x0, 0, 1, Buffer.alloc(100_000, 7));
    const empty = frame(0x4, 0x1, 0, Buffer.alloc(0));
    const input = Buffer.concat([PREFACE, big, empty, frame(0x1, 0x4, 1, PATH_AUTHORITY)]);
    const rewriter = new RequestRewriter();
    const out: Buffer[] = [];
    for (let at = 0; at < input.length; at++) out.push(rewriter.push(input.subarray(at, at + 1)));
    // Each byte of the DATA frame goes out in the push that brought it.
    assert.equal(out[PREFACE.length + 9 + 500]!.length, 1);
    assert.deepEqual(
      Buffer.concat(out),
      Buffer.concat([PREFACE, big, empty, frame(0x1, 0x4, 1, LOCALHOST_AUTHORITY)]),
    );
  });
});

void describe("the answer side of a connection", () => {
  void it("sets HEADER_TABLE_SIZE 0 in the server's first SETTINGS and passes everything after", () => {
    const params = Buffer.alloc(12);
    params.writeUInt16BE(0x1, 0); // HEADER_TABLE_SIZE 4096, replaced
    params.writeUInt32BE(4096, 2);
    params.writeUInt16BE(0x3, 6); // MAX_CONCURRENT_STREAMS 100, kept
    params.writeUInt32BE(100, 8);
    const first = frame(0x4, 0, 0, params);
    const later = Buffer.concat([frame(0x4, 0x1, 0, Buffer.alloc(0)), frame(0x4, 0, 0, params)]);
    const rewriter = new SettingsRewriter();
    const out = Buffer.concat([
      rewriter.push(first.subarray(0, 5)),
      rewriter.push(Buffer.concat([first.subarray(5), later.subarray(0, 4)])),
      rewriter.push(later.subarray(4)),
    ]);
    const [settings, ...rest] = frames(out);
    assert.equal(settings![0], 0x4);
    assert.deepEqual(settings![3], Buffer.from([0, 3, 0, 0, 0, 100, 0, 1, 0, 0, 0, 0]));
    assert.deepEqual(Buffer.concat(rest.map(([t, f, s, p]) => frame(t, f, s, p))), later);
  });
});
