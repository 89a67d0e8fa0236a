import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import {
  PathEscapeError,
  checkRealPathWithin,
  imagePathComponents,
  pathComponentProblem,
  resolveImagePath,
  resolveWithin,
} from "../../../src/common/paths.js";

const refused = (f: () => unknown, reason: RegExp) =>
  assert.throws(f, (e: unknown) => e instanceof PathEscapeError && reason.test(e.message));

void describe("resolveWithin", () => {
  void it("joins plain names and relative paths under the root", () => {
    assert.equal(resolveWithin("/var/lib/skiff/data", "hello"), "/var/lib/skiff/data/hello");
    assert.equal(resolveWithin("/var/lib/skiff/data/", "a", "b/c"), "/var/lib/skiff/data/a/b/c");
    assert.equal(resolveWithin("/", "etc"), "/etc");
    assert.equal(resolveWithin("/run"), "/run");
    assert.equal(resolveWithin("/d", ".hidden", "a..b", "..."), "/d/.hidden/a..b/...");
  });

  void it("refuses . and .. anywhere", () => {
    refused(() => resolveWithin("/data", ".."), /"\.\." is not allowed/);
    refused(() => resolveWithin("/data", "."), /"\." is not allowed/);
    refused(() => resolveWithin("/data", "a/../../etc"), /not allowed/);
    refused(() => resolveWithin("/data", "a/./b"), /not allowed/);
  });

  void it("refuses absolute parts, empty components, NUL and over-long names", () => {
    refused(() => resolveWithin("/data", "/etc"), /absolute/);
    refused(() => resolveWithin("/data", ""), /empty/);
    refused(() => resolveWithin("/data", "a//b"), /empty/);
    refused(() => resolveWithin("/data", "a/"), /empty/);
    refused(() => resolveWithin("/data", "a\0b"), /NUL/);
    refused(() => resolveWithin("/data", "x".repeat(256)), /longer than 255/);
    assert.equal(resolveWithin("/data", "x".repeat(255)), `/data/${"x".repeat(255)}`);
    // NAME_MAX counts bytes: 128 two-byte characters are 256 bytes.
    refused(() => resolveWithin("/data", "é".repeat(128)), /longer than 255/);
  });

  void it("refuses a relative root", () => {
    refused(() => resolveWithin("data", "a"), /root must be an absolute/);
  });

  void it("names the root and the offending part", () => {
    try {
      resolveWithin("/var/lib/skiff/data", "..");
      assert.fail("no error");
    } catch (e) {
      assert.ok(e instanceof PathEscapeError);
      assert.equal(e.root, "/var/lib/skiff/data");
      assert.equal(e.part, "..");
    }
  });
});

void describe("pathComponentProblem", () => {
  void it("accepts one safe file name only", () => {
    assert.equal(pathComponentProblem("hello-1.0.0.npk"), undefined);
    for (const bad of ["", ".", "..", "a/b", "/", "a\0"]) assert.ok(pathComponentProblem(bad), bad);
  });
});

void describe("in-image paths (resource dir)", () => {
  void it("normalises empty components without touching the disk", () => {
    assert.deepEqual(imagePathComponents("/"), []);
    assert.deepEqual(imagePathComponents("//usr//share/"), ["usr", "share"]);
    assert.equal(resolveImagePath("/run/images/res-1.0.0", "/"), "/run/images/res-1.0.0");
    assert.equal(
      resolveImagePath("/run/images/res-1.0.0", "/usr//share/"),
      "/run/images/res-1.0.0/usr/share",
    );
  });

  void it("refuses escapes and relative paths", () => {
    for (const bad of ["/../../..", "/a/../..", "/a/./b", "relative", "", "/a\0"]) {
      assert.equal(imagePathComponents(bad), undefined, bad);
      refused(() => resolveImagePath("/run/images/res-1.0.0", bad), /without \. or \.\./);
    }
  });

  void it("checkRealPathWithin follows links and refuses those leading out", async () => {
    const root = await mkdtemp(join(tmpdir(), "skiff-paths-"));
    try {
      await mkdir(join(root, "image", "inner"), { recursive: true });
      await symlink("/etc", join(root, "image", "out"));
      await symlink("inner", join(root, "image", "in"));
      assert.equal(
        await checkRealPathWithin(join(root, "image"), join(root, "image", "in")),
        join(root, "image", "inner"),
      );
      await assert.rejects(
        checkRealPathWithin(join(root, "image"), join(root, "image", "out")),
        (e: unknown) => e instanceof PathEscapeError && /resolves to \/etc/.test(e.message),
      );
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
