import assert from "node:assert/strict";
import { mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { handledElsewhere, ifExists, messageOf, settled } from "../../../src/common/errors.js";

describe("common/errors", () => {
  it("ifExists: the value, undefined for ENOENT and ENOTDIR, any other failure rethrown", async () => {
    const dir = await mkdtemp(join(tmpdir(), "skiff-errors-"));
    try {
      const file = join(dir, "f");
      await writeFile(file, "x");
      assert.equal((await ifExists(stat(file)))?.isFile(), true);
      assert.equal(await ifExists(stat(join(dir, "missing"))), undefined);
      assert.equal(await ifExists(stat(join(file, "below-a-file"))), undefined);
      const eacces = Object.assign(new Error("denied"), { code: "EACCES" });
      await assert.rejects(ifExists(Promise.reject(eacces)), /denied/);
      await assert.rejects(ifExists(Promise.reject(new Error("plain"))), /plain/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("settled resolves either way; handledElsewhere leaves the rejection to its awaiter", async () => {
    await settled(Promise.reject(new Error("x")));
    await settled(Promise.resolve(1));
    const failing = Promise.reject(new Error("later"));
    handledElsewhere(failing);
    await new Promise((resolve) => setImmediate(resolve));
    await assert.rejects(failing, /later/);
  });

  it("messageOf: an Error's message, else the string form", () => {
    assert.equal(messageOf(new Error("m")), "m");
    assert.equal(messageOf("s"), "s");
    assert.equal(messageOf(3), "3");
  });
});
