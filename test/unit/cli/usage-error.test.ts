import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { UsageError, isUsageError } from "../../../src/cli/command.js";

describe("isUsageError", () => {
  it("knows a UsageError, also one of another copy of the module (another bundle of dist/cli/)", async () => {
    // A second instance of command.js, as each bundle of the built `skiff` has its own.
    const copy = (await import(new URL("../../../src/cli/command.js?copy", import.meta.url).href)) as {
      UsageError: typeof UsageError;
    };
    assert.notEqual(copy.UsageError, UsageError);
    assert.ok(isUsageError(new UsageError("x")));
    assert.ok(isUsageError(new copy.UsageError("x")));
    assert.ok(!isUsageError(new Error("x")));
    assert.ok(!isUsageError(Object.assign(new Error("x"), { name: "UsageError" })));
    assert.ok(!isUsageError(undefined));
  });
});
