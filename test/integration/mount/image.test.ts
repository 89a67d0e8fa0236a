import assert from "node:assert/strict";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { release } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { findMount, mountImage, umount } from "../../../src/daemon/mount/index.js";
import { NpkError } from "../../../src/npk/errors.js";
import { openNpk, verifyFsImage } from "../../../src/npk/npk.js";
import { pack } from "../../../src/npk/pack.js";
import { createFixture, loopDevicesFor } from "../npk/fixtures.js";
import type { Fixture } from "../npk/fixtures.js";

let fx: Fixture;
before(async () => {
  fx = await createFixture("mount-test");
});
after(async () => {
  await fx.cleanup();
});

async function packed(name: string, fs: "squashfs" | "erofs", signed: boolean): Promise<string> {
  const out = join(fx.dir, `${name}.npk`);
  await pack({
    manifestPath: fx.manifest,
    rootDir: fx.root,
    out,
    fs,
    ...(signed ? { keyPath: fx.secretKey } : {}),
  });
  return out;
}

async function target(name: string): Promise<string> {
  const dir = join(fx.dir, "mnt", name);
  await mkdir(dir, { recursive: true });
  return dir;
}

// A file-backed erofs mount at an offset inside the NPK needs Linux >= 6.16 (file-backed erofs
// came in 6.12, `fsoffset=` in 6.16); an older kernel (the VM lane's Debian 6.1) refuses it and
// the default method falls back to a loop device, which the erofs case then checks instead.
const [major = 0, minor = 0] = release()
  .split(".")
  .map((part) => parseInt(part, 10));
const erofsFromFile = major > 6 || (major === 6 && minor >= 16);

const cases = [
  { fs: "squashfs", signed: false, method: undefined, expected: "loop" },
  { fs: "squashfs", signed: true, method: undefined, expected: "loop" },
  { fs: "erofs", signed: true, method: undefined, expected: erofsFromFile ? "file" : "loop" },
  { fs: "erofs", signed: false, method: "loop", expected: "loop" },
] as const;

void describe("mountImage", () => {
  for (const c of cases) {
    const label = `${c.signed ? "signed" : "unsigned"} ${c.fs} via ${c.expected}`;
    void it(`mounts ${label} read-only, nosuid, nodev and releases everything on umount`, async () => {
      const name = `${c.fs}-${c.signed}-${c.expected}`;
      const npkPath = await packed(name, c.fs, c.signed);
      const npk = await openNpk(npkPath, c.signed ? { key: await readFile(fx.publicKey) } : {});
      if (c.signed) await verifyFsImage(npk);
      const dir = await target(name);
      const handle = await mountImage(npk, dir, c.method === undefined ? {} : { method: c.method });
      try {
        assert.equal(handle.method, c.expected);
        assert.equal(await readFile(join(dir, "greeting.txt"), "utf8"), "Hello from the image\n");
        const options = (await readFile("/proc/self/mountinfo", "utf8"))
          .split("\n")
          .find((line) => line.split(" ")[4] === dir);
        assert.match(options ?? "", /\sro,nosuid,nodev/);
        await assert.rejects(writeFile(join(dir, "new.txt"), "x"), { code: "EROFS" });
        const loops = await loopDevicesFor(npkPath);
        assert.equal(loops.length, c.expected === "loop" ? 1 : 0);
        if (c.expected === "loop") assert.equal(handle.loopDevice, loops[0]);
      } finally {
        await umount(handle);
      }
      assert.equal(await findMount(dir), undefined);
      assert.deepEqual(await loopDevicesFor(npkPath), []);
    });
  }

  void it("mounts one package twice: each umount leaves the other mount readable and no loop device behind", async () => {
    const npkPath = await packed("twice", "squashfs", false);
    const npk = await openNpk(npkPath);
    const [first, second] = await Promise.all([
      mountImage(npk, await target("twice-1")),
      mountImage(npk, await target("twice-2")),
    ]);
    try {
      await umount(first);
      assert.equal(await readFile(join(second.target, "greeting.txt"), "utf8"), "Hello from the image\n");
    } finally {
      await umount(second);
    }
    assert.deepEqual(await loopDevicesFor(npkPath), []);
  });

  void it("leaves no loop device behind when the mount fails", async () => {
    const npkPath = await packed("failing", "squashfs", false);
    const npk = await openNpk(npkPath);
    const missing = join(fx.dir, "mnt", "does-not-exist");
    await assert.rejects(
      mountImage(npk, missing),
      (e: unknown) => e instanceof NpkError && e.kind === "tool",
    );
    assert.deepEqual(await loopDevicesFor(npkPath), []);
  });

  void it("refuses a file-backed mount of squashfs", async () => {
    const npk = await openNpk(await packed("squash-file", "squashfs", false));
    await assert.rejects(
      mountImage(npk, await target("squash-file"), { method: "file" }),
      /without a loop device/,
    );
  });
});
