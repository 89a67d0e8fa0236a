import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { NPK_FORMAT_VERSION, encodeMeta, parseMeta } from "../../../src/npk/meta.js";

void describe("NPK meta (ZIP comment)", () => {
  void it("writes the Northstar 0.9 format version", () => {
    assert.equal(encodeMeta().toString(), `version: ${NPK_FORMAT_VERSION}\n`);
    assert.equal(parseMeta(encodeMeta()), NPK_FORMAT_VERSION);
  });

  void it("writes what Northstar 0.9.2 writes", () => {
    assert.equal(encodeMeta().toString(), "version: 0.9.2\n");
  });

  void it("accepts any version >= 0.9 on major.minor.patch, as Northstar does", () => {
    assert.equal(parseMeta(Buffer.from("version: 0.9.0\n")), "0.9.0");
    assert.equal(parseMeta(Buffer.from("version: 0.9.3-pre\n")), "0.9.3-pre");
    assert.equal(parseMeta(Buffer.from("version: 0.9.0-alpha\n")), "0.9.0-alpha");
    assert.equal(parseMeta(Buffer.from("version: 0.10.0\n")), "0.10.0");
    assert.equal(parseMeta(Buffer.from("version: 1.0.0+build\n")), "1.0.0+build");
  });

  void it("reads the written form and any other YAML form alike", () => {
    for (const v of ["0.9.2", "0.9.3-pre", "1.0.0+build"]) {
      // The first is read without the YAML parser, the others through it.
      assert.equal(parseMeta(Buffer.from(`version: ${v}\n`)), v);
      assert.equal(parseMeta(Buffer.from(`version: "${v}"\n`)), v);
      assert.equal(parseMeta(Buffer.from(`# meta\nversion:   ${v}\n`)), v);
    }
    assert.throws(() => parseMeta(Buffer.from("version: 0.9.2\nversion: 0.9.3\n")), /not valid YAML/);
  });

  void it("rejects other format versions and malformed comments", () => {
    assert.throws(() => parseMeta(Buffer.from("version: 0.8.3\n")), /0\.8\.3 is not supported/);
    assert.throws(() => parseMeta(Buffer.from("version: 0.8.99-rc\n")), /not supported/);
    assert.throws(() => parseMeta(Buffer.from("version: v0.9.2\n")), /version must be/);
    assert.throws(() => parseMeta(Buffer.from("version: 0.9\n")), /version must be/);
    assert.throws(() => parseMeta(Buffer.from("")), /version must be/);
    assert.throws(() => parseMeta(Buffer.from("version: [")), /not valid YAML/);
  });
});
