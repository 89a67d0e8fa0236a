// The hard limits of the NPK parsers (docs/npk.md, "Limits on untrusted input"), and the
// manifest worker that keeps the yaml parser off the event loop.
import assert from "node:assert/strict";
import { mkdtemp, open, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { NpkError } from "../../../src/npk/errors.js";
import { ManifestError, parseManifest } from "../../../src/npk/manifest/index.js";
import { parseManifestOffLoop } from "../../../src/npk/manifest/worker.js";
import { parseMeta } from "../../../src/npk/meta.js";
import { decodeSignature } from "../../../src/npk/signature.js";
import { MAX_ENTRIES, readZip, writeZip } from "../../../src/npk/zip.js";

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "skiff-limits-test-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

function assertNpkError(kind: string, pattern: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof NpkError, `expected NpkError, got ${String(e)}`);
    assert.equal(e.kind, kind);
    assert.match(e.message, pattern);
    return true;
  };
}

describe("NPK parser limits", () => {
  it("refuses a ZIP with more entries than an NPK has, before reading its central directory", async () => {
    const path = join(dir, "many.zip");
    const entries = Array.from({ length: MAX_ENTRIES + 1 }, (_, i) => ({
      name: `e${i}`,
      data: Buffer.from("x"),
    }));
    await writeZip(path, entries, { comment: Buffer.from("version: 0.9.3\n") });
    const file = await open(path, "r");
    try {
      await assert.rejects(readZip(file), assertNpkError("zip", /17 entries; an NPK has at most 16/));
    } finally {
      await file.close();
    }
  });

  it("refuses an oversized meta before parsing it as YAML", () => {
    assert.throws(() => parseMeta(Buffer.alloc(300, "#")), assertNpkError("meta", /more than 256/));
    assert.throws(() => parseMeta(Buffer.from("version: &v 0.9.3\nx: *v\n")), assertNpkError("meta", /YAML/));
  });

  it("refuses a deeply nested or aliased signature.yaml before parsing it", () => {
    const deep = "meta: " + "[".repeat(2000) + "]".repeat(2000) + "\n---\nsignature: AAAA";
    assert.throws(() => decodeSignature(deep), assertNpkError("signature", /nested deeper than 4/));
    const aliased = "meta: &m\n  hash: x\nmanifest.yaml: *m\n---\nsignature: AAAA";
    assert.throws(() => decodeSignature(aliased), assertNpkError("signature", /not valid YAML/));
  });
});

describe("manifest worker", () => {
  const good =
    "name: hello\nversion: 1.0.0\ninit: /bin/sh\nuid: 1\ngid: 1\nenv:\n  A: '1'\ncustom: {a: [1, x]}\n";

  it("returns what parseManifest returns, for many parses at once", async () => {
    const results = await Promise.all(Array.from({ length: 20 }, () => parseManifestOffLoop(good)));
    for (const m of results) assert.deepEqual(m, parseManifest(good));
  });

  it("rejects with the same ManifestError issues", async () => {
    const bad = "name: hello\nversion: x\nuid: 0\ngid: 1\n";
    let expected: unknown;
    try {
      parseManifest(bad);
    } catch (e) {
      expected = e;
    }
    assert.ok(expected instanceof ManifestError);
    await assert.rejects(parseManifestOffLoop(bad), (e: unknown) => {
      assert.ok(e instanceof ManifestError, String(e));
      assert.deepEqual(e.errors, expected.errors);
      return true;
    });
  });
});
