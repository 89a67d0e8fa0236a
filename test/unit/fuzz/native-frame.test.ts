// A bounded libFuzzer run of the monitor's frame decoder and JSON reader (native/fuzz/): the
// seed corpus in native/fuzz/corpus plus whatever earlier runs added under native/build.
// Needs clang-14 and libclang-rt-14-dev (scripts/debian-packages.txt).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { it } from "node:test";

const PACKAGE_ROOT = new URL("../../../../", import.meta.url).pathname;
const FUZZ_SECONDS = 15;

it(
  "the monitor's frame parser survives a bounded coverage-guided fuzz run",
  { timeout: 120_000 },
  async () => {
    const make = spawn(
      "make",
      ["-s", "-C", join(PACKAGE_ROOT, "native"), "fuzz-run", `FUZZ_SECONDS=${FUZZ_SECONDS}`],
      {
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let output = "";
    make.stdout.on("data", (d: Buffer) => (output += d.toString()));
    make.stderr.on("data", (d: Buffer) => (output += d.toString()));
    const code = await new Promise<number | null>((resolve) => make.once("close", resolve));
    assert.equal(
      code,
      0,
      `fuzz run failed (a finding is saved as native/build/crash-*):\n${output.slice(-4000)}`,
    );
    assert.match(output, /Done \d+ runs/);
  },
);
