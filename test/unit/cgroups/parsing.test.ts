import { test } from "node:test";
import assert from "node:assert/strict";
import { parseFlatKeyed, parseLimit, parsePids } from "../../../src/daemon/cgroups/fsio.js";
import { parseIoStat, sumV1Blkio } from "../../../src/daemon/cgroups/cgroup-stats.js";

void test("limit values: max, -1 and the v1 unlimited sentinel are null", () => {
  assert.equal(parseLimit("max"), null);
  assert.equal(parseLimit("9223372036854771712"), null);
  assert.equal(parseLimit("33554432"), 33554432);
  assert.throws(() => parseLimit("lots"));
});

void test("flat keyed files and pid lists", () => {
  assert.deepEqual(
    [...parseFlatKeyed("populated 1\nfrozen 0\n")],
    [
      ["populated", 1],
      ["frozen", 0],
    ],
  );
  assert.deepEqual(parsePids("12\n13\n"), [12, 13]);
  assert.deepEqual(parsePids(""), []);
});

void test("v1 blkio and v2 io.stat totals", () => {
  const v1 = "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 1\n8:16 Read 1\n8:0 Total 12288\nTotal 12289\n";
  assert.deepEqual(sumV1Blkio(v1), { read: 4097, write: 8192 });
  const v2 =
    "8:0 rbytes=100 wbytes=200 rios=3 wios=4 dbytes=0 dios=0\n8:16 rbytes=1 wbytes=2 rios=1 wios=1\n";
  assert.deepEqual(parseIoStat(v2), { readBytes: 101, writeBytes: 202, readOps: 4, writeOps: 5 });
});
