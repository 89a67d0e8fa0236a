import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { NPK_FORMAT_VERSION, encodeMeta, parseMeta } from "../../../src/npk/meta.js";

void describe("NPK meta (ZIP comment)", () => {
  void it("writes the Northstar 0.9 format version", () => {
    assert.equal(encodeMeta().toString(), `version: ${NPK_FORMAT_VERSION}\n`);
    assert.equal(parseMeta(encodeMeta()), NPK_FORMAT_VERSION);
  });

  void it("accepts any 0.9.x, including pre-releases", () => {
    assert.equal(parseMeta(Buffer.from("version: 0.9.0\n")), "0.9.0");
    assert.equal(parseMeta(Buffer.from("version: 0.9.3-pre\n")), "0.9.3-pre");
  });

  void it("rejects other format versions and malformed comments", () => {
    assert.throws(() => parseMeta(Buffer.from("version: 0.8.3\n")), /0\.8\.3 is not supported/);
    assert.throws(() => parseMeta(Buffer.from("version: 1.0.0\n")), /not supported/);
    assert.throws(() => parseMeta(Buffer.from("")), /version must be/);
    assert.throws(() => parseMeta(Buffer.from("version: [")), /not valid YAML/);
  });
});
