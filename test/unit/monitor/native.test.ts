import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { dirname } from "node:path";
import { describe, it } from "node:test";
import { nativeBinary } from "../../../src/daemon/monitor/native.js";

describe("monitor C units (native/test, ASan + UBSan)", () => {
  it("pass: JSON lookup, frames, line splitting, log rotation", () => {
    const nativeDir = dirname(dirname(nativeBinary("skiff-monitor")));
    const output = execFileSync("make", ["-s", "-C", nativeDir, "check"], { encoding: "utf8" });
    assert.match(output, /all checks passed/);
  });
});
