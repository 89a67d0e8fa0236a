/**
 * skiff-mount's refusals through mountLoop (src/daemon/mount/file-mount.ts): a path that is not
 * a regular file and a range outside the file are refused before any loop device is taken.
 * Successful mounts are image.test.ts's.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { NpkError } from "../../../src/npk/errors.js";
import { MS_RDONLY, mountLoop } from "../../../src/daemon/mount/file-mount.js";
import { waitFor } from "../../helpers/wait.js";

const execFileAsync = promisify(execFile);

describe("skiff-mount refusals", () => {
  let dir: string;
  let file: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "skiff-mount-"));
    file = join(dir, "image");
    await writeFile(file, Buffer.alloc(8192));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  const refused = (pattern: RegExp) => (e: unknown) => e instanceof NpkError && pattern.test(e.message);

  it("not a regular file", async () => {
    await assert.rejects(
      mountLoop(dir, { offset: 0, size: 4096 }, dir, "squashfs", MS_RDONLY, ""),
      refused(/not a regular file/),
    );
  });

  it("an offset or size that is not a number in the file", async () => {
    await assert.rejects(
      mountLoop(file, { offset: -1, size: 4096 }, dir, "squashfs", MS_RDONLY, ""),
      refused(/bad offset -1/),
    );
    await assert.rejects(
      mountLoop(file, { offset: 0, size: 0 }, dir, "squashfs", MS_RDONLY, ""),
      refused(/bad size 0/),
    );
    await assert.rejects(
      mountLoop(file, { offset: 8192, size: 1 }, dir, "squashfs", MS_RDONLY, ""),
      refused(/range outside the file/),
    );
    await assert.rejects(
      mountLoop(file, { offset: 4096, size: 8192 }, dir, "squashfs", MS_RDONLY, ""),
      refused(/range outside the file/),
    );
  });

  it("a range in the file that holds no file system: the mount's own error, nothing left attached", async () => {
    await assert.rejects(
      mountLoop(file, { offset: 0, size: 8192 }, dir, "squashfs", MS_RDONLY, ""),
      refused(/mount\(\/dev\/loop\d+, .*squashfs.*\)/),
    );
    // Autoclear releases the device when skiff-mount's descriptor closes.
    await waitFor(async () => (await execFileAsync("losetup", ["-j", file])).stdout.trim() === "", {
      timeoutMs: 5000,
      what: "the loop device to be released",
    });
  });
});
