import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  checkProxyFraming,
  createFrameCounter,
  formatProxyEndpoint,
  parseProxyListen,
  parseProxyTarget,
} from "../../../src/daemon/power/framing.js";

const bytes = (text: string): Buffer => Buffer.from(text);
function lengthFrame(payload: string): Buffer {
  const header = Buffer.alloc(4);
  header.writeUInt32BE(Buffer.byteLength(payload));
  return Buffer.concat([header, bytes(payload)]);
}
/** Feeds `stream` in pieces of `size` bytes and returns the count per piece. */
function countInPieces(framing: "newline" | "length", stream: Buffer, size: number): number[] {
  const counter = createFrameCounter(framing);
  const counts: number[] = [];
  for (let at = 0; at < stream.length; at += size) counts.push(counter.push(stream.subarray(at, at + size)));
  return counts;
}
const sum = (values: number[]): number => values.reduce((a, b) => a + b, 0);

describe("newline framing", () => {
  it("counts every complete line, wherever the chunks split", () => {
    const stream = bytes("one\ntwo\n\nthree\nfour");
    for (const size of [1, 2, 3, 7, stream.length])
      assert.equal(sum(countInPieces("newline", stream, size)), 4);
  });

  it("counts a line in the chunk that completes it and reports the partial tail", () => {
    const counter = createFrameCounter("newline");
    assert.equal(counter.push(bytes("hel")), 0);
    assert.equal(counter.partial, 3);
    assert.equal(counter.push(bytes("lo\nwor")), 1);
    assert.equal(counter.partial, 3);
    assert.equal(counter.push(bytes("ld\n")), 1);
    assert.equal(counter.partial, 0);
  });
});

describe("length framing", () => {
  const stream = Buffer.concat([
    lengthFrame("alpha"),
    lengthFrame(""),
    lengthFrame("a longer payload\n"),
    lengthFrame("z"),
  ]);

  it("counts frames, including empty ones, across any split of header and payload", () => {
    for (const size of [1, 2, 3, 4, 5, 9, stream.length])
      assert.equal(sum(countInPieces("length", stream, size)), 4);
  });

  it("counts a frame when its last payload byte arrives", () => {
    const frame = lengthFrame("abc");
    const counter = createFrameCounter("length");
    assert.equal(counter.push(frame.subarray(0, 6)), 0);
    assert.equal(counter.partial, 6);
    assert.equal(counter.push(frame.subarray(6)), 1);
    assert.equal(counter.partial, 0);
  });

  it("does not mistake payload bytes for headers or newlines", () => {
    const payload = "\n\n\n\0\0\0\0";
    assert.deepEqual(countInPieces("length", lengthFrame(payload), 100), [1]);
  });

  it("reads lengths of 2 GiB and more as positive", () => {
    const counter = createFrameCounter("length");
    assert.equal(counter.push(Buffer.from([0x80, 0, 0, 1, 0xff])), 0);
    assert.equal(counter.partial, 5);
  });
});

describe("proxy addresses", () => {
  it("parses targets", () => {
    assert.deepEqual(parseProxyTarget("unix:///run/app/app.sock"), {
      kind: "unix",
      path: "/run/app/app.sock",
    });
    assert.deepEqual(parseProxyTarget("tcp://127.0.0.1:8080"), {
      kind: "tcp",
      host: "127.0.0.1",
      port: 8080,
    });
    assert.deepEqual(parseProxyTarget("udp://10.0.0.2:53"), { kind: "udp", host: "10.0.0.2", port: 53 });
    assert.deepEqual(parseProxyTarget("tcp://[::1]:80"), { kind: "tcp", host: "::1", port: 80 });
  });

  it("rejects malformed targets with the reason", () => {
    assert.throws(() => parseProxyTarget("unix://relative"), /absolute path/);
    assert.throws(() => parseProxyTarget("tcp://127.0.0.1"), /need a port/);
    assert.throws(() => parseProxyTarget("tcp://127.0.0.1:0"), /non-zero port/);
    assert.throws(() => parseProxyTarget("tcp://localhost:80"), /IP address/);
    assert.throws(() => parseProxyTarget("http://127.0.0.1:80"), /unix:\/\/, tcp:\/\/ or udp:\/\//);
    assert.throws(() => parseProxyTarget("not a url"), /invalid address/);
  });

  it("accepts loopback listen addresses (port 0 too) and refuses every other host", () => {
    assert.deepEqual(parseProxyListen("tcp://127.0.0.1:0"), { kind: "tcp", host: "127.0.0.1", port: 0 });
    assert.deepEqual(parseProxyListen("udp://127.0.0.5:9000"), {
      kind: "udp",
      host: "127.0.0.5",
      port: 9000,
    });
    assert.deepEqual(parseProxyListen("tcp://[::1]:9000"), { kind: "tcp", host: "::1", port: 9000 });
    assert.deepEqual(parseProxyListen("unix:///run/skiff/p.sock"), {
      kind: "unix",
      path: "/run/skiff/p.sock",
    });
    for (const text of [
      "tcp://0.0.0.0:9000",
      "tcp://192.168.1.2:9000",
      "udp://[::]:53",
      "tcp://[2001:db8::1]:80",
    ]) {
      assert.throws(() => parseProxyListen(text), /not a loopback address/, text);
    }
  });

  it("formats endpoints back", () => {
    for (const text of ["unix:///a/b.sock", "tcp://127.0.0.1:80", "udp://[::1]:53"]) {
      const endpoint = text.startsWith("udp") ? parseProxyTarget(text) : parseProxyListen(text);
      assert.equal(formatProxyEndpoint(endpoint), text);
    }
  });

  it("allows datagram framing over UDP only and stream framings over Unix or TCP only", () => {
    const udp = parseProxyTarget("udp://127.0.0.1:53");
    const tcp = parseProxyTarget("tcp://127.0.0.1:80");
    const unix = parseProxyTarget("unix:///s");
    assert.equal(checkProxyFraming("datagram", udp, udp), undefined);
    assert.equal(checkProxyFraming("newline", unix, tcp), undefined);
    assert.equal(checkProxyFraming("length", tcp, unix), undefined);
    assert.match(checkProxyFraming("datagram", unix, udp)!, /udp:\/\/ listen/);
    assert.match(checkProxyFraming("datagram", udp, unix)!, /udp:\/\/ target/);
    assert.match(checkProxyFraming("newline", udp, tcp)!, /listen/);
    assert.match(checkProxyFraming("length", tcp, udp)!, /target/);
  });
});
