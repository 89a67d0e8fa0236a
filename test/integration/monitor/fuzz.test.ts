import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { dirname, join } from "node:path";
import { describe, it } from "node:test";
import { nativeBinary } from "../../../src/daemon/monitor/native.js";

describe("monitor frame decoder fuzz driver", () => {
  it("finds nothing in a few seconds of random frames (ASan + UBSan)", () => {
    const nativeDir = dirname(dirname(nativeBinary("skiff-monitor")));
    execFileSync("make", ["-s", "-C", nativeDir, "fuzz"], { stdio: "inherit" });
    const seed = String(Date.now() % 1_000_000);
    const output = execFileSync(join(nativeDir, "build", "frame-fuzz"), ["3", seed], { encoding: "utf8" });
    assert.match(output, /no findings/, `seed ${seed}`);
  });
});
