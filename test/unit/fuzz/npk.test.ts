// Property-based test of the NPK reader: a valid signed package with bytes replaced, inserted
// or cut off (mostly in the ZIP headers, central directory, meta and manifest, where the parsing
// happens) opens or fails with NpkError, with and without a key; never another error.
import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import { NpkError } from "../../../src/npk/errors.js";
import { openNpk } from "../../../src/npk/npk.js";
import { readPublicKey } from "../../../src/npk/signature.js";
import { EXAMPLE_PUB, TestPackages } from "../../helpers/npk.js";

/** Where a mutation lands: the head (local headers, manifest, signature), the tail (central directory, meta), anywhere. */
const REGION = 1024;

interface Edit {
  region: "head" | "tail" | "any";
  at: number;
  kind: "replace" | "insert" | "truncate";
  bytes: Uint8Array;
}

const edit: fc.Arbitrary<Edit> = fc.record({
  region: fc.constantFrom("head", "tail", "any"),
  at: fc.nat(),
  kind: fc.constantFrom("replace", "replace", "replace", "insert", "truncate"),
  bytes: fc.uint8Array({ minLength: 1, maxLength: 4 }),
});

function mutate(original: Buffer, edits: Edit[]): Buffer {
  let data = Buffer.from(original);
  for (const e of edits) {
    const span = e.region === "any" ? data.length : Math.min(REGION, data.length);
    const offset = e.region === "tail" ? data.length - span : 0;
    const at = offset + (span === 0 ? 0 : e.at % span);
    if (e.kind === "truncate") data = data.subarray(0, at);
    else if (e.kind === "insert") data = Buffer.concat([data.subarray(0, at), e.bytes, data.subarray(at)]);
    else data.set(e.bytes.subarray(0, Math.max(0, data.length - at)), at);
  }
  return data;
}

describe("NPK reader properties", () => {
  let packages: TestPackages;
  let valid: Buffer;
  let key: Awaited<ReturnType<typeof readPublicKey>>;
  before(async () => {
    packages = await TestPackages.create();
    valid = await readFile((await packages.build("fuzz-npk", "1.0.0")).path);
    key = await readPublicKey(EXAMPLE_PUB);
  });
  after(async () => {
    await packages.remove();
  });

  it("opens mutated packages or fails with NpkError", async () => {
    const path = join(packages.dir, "mutated.npk");
    let opened = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(edit, { minLength: 1, maxLength: 3 }), async (edits) => {
        await writeFile(path, mutate(valid, edits));
        for (const opts of [{ key }, {}]) {
          try {
            await openNpk(path, opts);
            opened++;
          } catch (e) {
            assert.ok(e instanceof NpkError, `openNpk threw ${String(e)} for edits ${JSON.stringify(edits)}`);
          }
        }
      }),
      { numRuns: 150 },
    );
    // Some mutations are harmless (padding, unsigned reads); if none opened, the test only sees the first check.
    assert.ok(opened > 0);
  });
});
