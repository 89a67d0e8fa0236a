import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseByteSize, parseConfigSize } from "../../../src/common/units.js";

describe("parseByteSize", () => {
  it("reads explicit units the same in both readings", () => {
    for (const letter of ["decimal", "binary"] as const) {
      assert.equal(parseByteSize("42", letter), 42);
      assert.equal(parseByteSize("100kB", letter), 100_000);
      assert.equal(parseByteSize("100MB", letter), 100_000_000);
      assert.equal(parseByteSize("64KiB", letter), 65_536);
      assert.equal(parseByteSize("1 MiB", letter), 1_048_576);
    }
  });
  it("reads a lone prefix letter as the caller says", () => {
    assert.equal(parseByteSize("1M", "decimal"), 1_000_000);
    assert.equal(parseByteSize("1M", "binary"), 1_048_576);
    assert.equal(parseConfigSize("1M"), 1_048_576);
    assert.equal(parseConfigSize(4096), 4096);
  });
  it("refuses fractions, bad units and sizes past 2^53", () => {
    assert.throws(() => parseByteSize("1.5M", "binary"), RangeError);
    assert.throws(() => parseByteSize("1Mi", "binary"), /binary units/);
    assert.throws(() => parseByteSize("10 parsecs", "decimal"), /invalid size/);
    assert.throws(() => parseByteSize("99999999EiB", "binary"), /too large/);
    assert.equal(parseConfigSize(-1), undefined);
  });
});
