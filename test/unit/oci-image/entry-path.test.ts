import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { LayerWrites, classifyEntry, parseEntryName } from "../../../src/oci-image/entry-path.js";
import { OciImageError } from "../../../src/oci-image/errors.js";

void describe("parseEntryName", () => {
  void it("normalizes the names tools write", () => {
    assert.deepEqual(parseEntryName("./bin/sh", "t"), ["bin", "sh"]);
    assert.deepEqual(parseEntryName("bin//sh/", "t"), ["bin", "sh"]);
    assert.deepEqual(parseEntryName("./", "t"), []);
    assert.deepEqual(parseEntryName("a/./b", "t"), ["a", "b"]);
  });

  void it("refuses escapes, NUL and over-long names", () => {
    for (const bad of [
      "../x",
      "a/../../x",
      "a/..",
      "/etc/passwd",
      "a\0b",
      "x".repeat(256),
      "a/".repeat(2100),
    ]) {
      assert.throws(
        () => parseEntryName(bad, "t"),
        (e: unknown) => e instanceof OciImageError && e.kind === "layer",
        bad.slice(0, 30),
      );
    }
  });
});

void describe("classifyEntry", () => {
  void it("tells paths, whiteouts and opaque markers apart", () => {
    assert.deepEqual(classifyEntry(["etc", "passwd"], "t"), { kind: "path", path: ["etc", "passwd"] });
    assert.deepEqual(classifyEntry(["etc", ".wh.rmme"], "t"), { kind: "whiteout", path: ["etc", "rmme"] });
    assert.deepEqual(classifyEntry([".wh.top"], "t"), { kind: "whiteout", path: ["top"] });
    assert.deepEqual(classifyEntry(["data", ".wh..wh..opq"], "t"), { kind: "opaque", dir: ["data"] });
    assert.deepEqual(classifyEntry([".wh..wh..opq"], "t"), { kind: "opaque", dir: [] });
    assert.deepEqual(classifyEntry(["a.wh.b"], "t"), { kind: "path", path: ["a.wh.b"] });
  });

  void it("refuses whiteouts of nothing, of . and .., and of other whiteouts", () => {
    for (const base of [".wh.", ".wh..", ".wh...", ".wh..wh.x"]) {
      assert.throws(() => classifyEntry(["d", base], "t"), OciImageError, base);
    }
  });
});

void describe("LayerWrites", () => {
  void it("knows what this layer wrote and what an opaque marker keeps", () => {
    const w = new LayerWrites();
    w.add(["data", "keep", "file"]);
    w.add(["data", "top"]);
    assert.ok(w.wrote(["data", "top"]));
    assert.ok(!w.wrote(["data", "keep"]), "an implied parent is not written");
    assert.ok(w.keepsUnderOpaque(["data", "keep"]), "an ancestor of a written path stays");
    assert.ok(w.keepsUnderOpaque(["data", "keep", "file"]));
    assert.ok(w.keepsUnderOpaque(["data", "top"]));
    assert.ok(!w.keepsUnderOpaque(["data", "lower"]));
    assert.ok(!w.keepsUnderOpaque(["data", "ke"]), "no prefix confusion");
  });
});
