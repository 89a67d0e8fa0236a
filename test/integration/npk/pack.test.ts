import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { NpkError } from "../../../src/npk/errors.js";
import { FS_IMG_NAME, openNpk, verifyFsImage } from "../../../src/npk/npk.js";
import { pack } from "../../../src/npk/pack.js";
import { readPublicKey } from "../../../src/npk/signature.js";
import { inspectFull, inspectShort, unpack } from "../../../src/npk/unpack.js";
import { createFixture } from "./fixtures.js";
import type { Fixture } from "./fixtures.js";

const run = promisify(execFile);
let fx: Fixture;

before(async () => {
  fx = await createFixture("pack-test");
});
after(async () => {
  await fx.cleanup();
});

async function extractFsImage(npkPath: string, dest: string): Promise<void> {
  const npk = await openNpk(npkPath);
  const bytes = await readFile(npkPath);
  await writeFile(dest, bytes.subarray(npk.fsImage.offset, npk.fsImage.offset + npk.fsImage.size));
}

function isNpkError(kind: string, pattern: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof NpkError, `expected NpkError, got ${String(e)}`);
    assert.equal(e.kind, kind, e.message);
    assert.match(e.message, pattern);
    return true;
  };
}

for (const fs of ["squashfs", "erofs"] as const) {
  void describe(`signed ${fs} package`, () => {
    let npkPath: string;
    before(async () => {
      const out = join(fx.dir, `hello-${fs}.npk`);
      [npkPath] = (await pack({
        manifestPath: fx.manifest,
        rootDir: fx.root,
        keyPath: fx.secretKey,
        out,
        fs,
      })) as [string];
    });

    void it("opens and verifies with the public key", async () => {
      const npk = await openNpk(npkPath, { key: await readFile(fx.publicKey) });
      assert.equal(npk.version, "0.9.2");
      assert.equal(npk.verified, true);
      assert.deepEqual(npk.entries, ["manifest.yaml", "signature.yaml", "fs.img"]);
      assert.equal(npk.manifest.name, "hello");
      assert.equal(npk.fsImage.type, fs);
      assert.equal(npk.fsImage.offset % 4096, 0);
      assert.ok(npk.verity);
      assert.equal(npk.verity.offset % 4096, 0);
      await verifyFsImage(npk);
    });

    void it("is accepted by veritysetup verify", async () => {
      const npk = await openNpk(npkPath);
      assert.ok(npk.verity);
      const image = join(fx.dir, `${fs}-fs.img`);
      await extractFsImage(npkPath, image);
      await run("veritysetup", [
        "verify",
        `--hash-offset=${npk.verity.offset}`,
        image,
        image,
        npk.verity.rootHash,
      ]);
    });

    void it("unpacks the root with the manifest's mount points", async () => {
      const out = join(fx.dir, `unpacked-${fs}`);
      await unpack(npkPath, out);
      assert.equal(await readFile(join(out, "root", "greeting.txt"), "utf8"), "Hello from the image\n");
      for (const dir of ["proc", "lib", "data", "srv/www", "dev"]) {
        assert.ok((await stat(join(out, "root", dir))).isDirectory(), dir);
      }
      assert.ok((await readFile(join(out, "signature.yaml"), "utf8")).includes("verity-offset"));
      await assert.rejects(stat(join(out, FS_IMG_NAME)));
    });

    void it("inspects short and full", async () => {
      assert.deepEqual(await inspectShort(npkPath), {
        name: "hello",
        version: "0.0.2",
        npkVersion: "0.9.2",
        resourceContainer: false,
      });
      const full = await inspectFull(npkPath);
      assert.match(full.manifest, /name: hello/);
      assert.ok(full.signature?.includes("signature: "));
      assert.match(full.listing, /greeting\.txt/);
      assert.match(full.listing, /srv\/www/);
    });
  });
}

void describe("package verification failures", () => {
  let signed: string;
  let npkBytes: Buffer;
  let fsOffset: number;
  before(async () => {
    signed = join(fx.dir, "base.npk");
    await pack({ manifestPath: fx.manifest, rootDir: fx.root, keyPath: fx.secretKey, out: signed });
    npkBytes = await readFile(signed);
    fsOffset = (await openNpk(signed)).fsImage.offset;
  });

  async function variant(name: string, bytes: Buffer): Promise<string> {
    const path = join(fx.dir, name);
    await writeFile(path, bytes);
    return path;
  }

  void it("rejects a package signed by another key", async () => {
    const other = await createFixture("other-key");
    try {
      await assert.rejects(
        openNpk(signed, { key: await readPublicKey(other.publicKey) }),
        isNpkError("signature", /invalid signature/),
      );
    } finally {
      await other.cleanup();
    }
  });

  void it("rejects an unsigned package when a key is required", async () => {
    const unsigned = join(fx.dir, "unsigned.npk");
    await pack({ manifestPath: fx.manifest, rootDir: fx.root, out: unsigned });
    const npk = await openNpk(unsigned);
    assert.equal(npk.signature, undefined);
    await assert.rejects(
      openNpk(unsigned, { key: await readFile(fx.publicKey) }),
      isNpkError("signature", /missing/),
    );
  });

  void it("rejects a manifest that does not match its hash", async () => {
    const bytes = Buffer.from(npkBytes);
    const at = bytes.indexOf("name: hello");
    bytes.write("name: jello", at);
    // Fix the CRC-32 in both headers so only the signed hash can catch the change.
    const { crc32 } = await import("node:zlib");
    const manifestEnd = bytes.indexOf("PK", at);
    const newCrc = crc32(bytes.subarray(30 + "manifest.yaml".length, manifestEnd));
    const oldCrc = bytes.readUInt32LE(14);
    bytes.writeUInt32LE(newCrc, 14);
    const central = bytes.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]));
    assert.equal(bytes.readUInt32LE(central + 16), oldCrc);
    bytes.writeUInt32LE(newCrc, central + 16);
    const path = await variant("manifest-hash.npk", bytes);
    await assert.rejects(
      openNpk(path, { key: await readFile(fx.publicKey) }),
      isNpkError("hash", /manifest hash/),
    );
  });

  void it("rejects a meta (ZIP comment) that does not match its hash", async () => {
    const bytes = Buffer.from(npkBytes);
    bytes.write("0.9.0", bytes.length - "0.9.2\n".length);
    const path = await variant("meta-hash.npk", bytes);
    await assert.rejects(
      openNpk(path, { key: await readFile(fx.publicKey) }),
      isNpkError("hash", /meta hash/),
    );
  });

  void it("catches a flipped byte in fs.img through verity", async () => {
    const bytes = Buffer.from(npkBytes);
    bytes[fsOffset + 100] = (bytes[fsOffset + 100] ?? 0) ^ 0x01;
    const path = await variant("flipped.npk", bytes);
    const npk = await openNpk(path, { key: await readFile(fx.publicKey) });
    await assert.rejects(verifyFsImage(npk), isNpkError("verity", /root hash mismatch/));
  });

  void it("rejects a truncated package", async () => {
    const path = await variant("truncated.npk", npkBytes.subarray(0, npkBytes.length - 40));
    await assert.rejects(openNpk(path), isNpkError("zip", /end of central directory|truncated/));
  });

  void it("rejects a compressed entry", async () => {
    const bytes = Buffer.from(npkBytes);
    const central = bytes.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]));
    bytes.writeUInt16LE(8, central + 10);
    const path = await variant("compressed.npk", bytes);
    await assert.rejects(openNpk(path), isNpkError("zip", /is compressed/));
  });

  void it("rejects a misaligned fs.img", async () => {
    const { writeZip } = await import("../../../src/npk/zip.js");
    const image = join(fx.dir, "plain-fs.img");
    await extractFsImage(signed, image);
    const path = join(fx.dir, "misaligned.npk");
    await writeZip(
      path,
      [
        { name: "manifest.yaml", data: Buffer.from("name: hello\nversion: 0.0.2\nuid: 1\ngid: 1\n") },
        { name: "fs.img", data: { path: image } },
      ],
      { comment: Buffer.from("version: 0.9.2\n") },
    );
    await assert.rejects(openNpk(path), isNpkError("fs", /not 4096-aligned/));
  });

  void it("refuses entries that escape on unpack and leaves nothing behind", async () => {
    const { writeZip } = await import("../../../src/npk/zip.js");
    for (const name of ["../escaped.txt", "/tmp/escaped.txt"]) {
      const path = join(fx.dir, "evil.npk");
      await writeZip(path, [{ name, data: Buffer.from("x") }], { comment: Buffer.from("version: 0.9.2\n") });
      const out = join(fx.dir, "evil-out", "nested");
      await assert.rejects(unpack(path, out), isNpkError("zip", /absolute|'\.\.'/));
      await assert.rejects(stat(out));
      await assert.rejects(stat(join(fx.dir, "evil-out", "escaped.txt")));
    }
  });
});

void describe("pack options", () => {
  void it("writes clones named like Northstar's sextant", async () => {
    const out = join(fx.dir, "clones");
    await mkdir(out);
    const written = await pack({
      manifestPath: fx.manifest,
      rootDir: fx.root,
      out,
      clones: 3,
      compression: "none",
    });
    assert.deepEqual((await readdir(out)).sort(), [
      "hello-0-0.0.2.npk",
      "hello-1-0.0.2.npk",
      "hello-2-0.0.2.npk",
    ]);
    assert.equal((await openNpk(written[1] ?? "")).manifest.name, "hello-1");
  });

  void it("accepts JSON and TOML manifests and stores them as manifest.yaml", async () => {
    const json = join(fx.dir, "manifest.json");
    await writeFile(
      json,
      JSON.stringify({ name: "fromjson", version: "1.0.0", init: "/bin/hello", uid: 1, gid: 1 }),
    );
    const toml = join(fx.dir, "manifest.toml");
    await writeFile(toml, 'name = "fromtoml"\nversion = "1.0.0"\ninit = "/bin/hello"\nuid = 1\ngid = 1\n');
    for (const [path, name] of [
      [json, "fromjson"],
      [toml, "fromtoml"],
    ] as const) {
      const [out] = await pack({ manifestPath: path, rootDir: fx.root, out: join(fx.dir, `${name}.npk`) });
      const npk = await openNpk(out ?? "");
      assert.equal(npk.manifest.name, name);
      assert.match(npk.manifestText, new RegExp(`^name: ${name}$`, "m"));
    }
  });

  void it("writes one package for a resource container even with clones", async () => {
    const out = join(fx.dir, "resource-clones");
    await mkdir(out);
    await pack({ manifestPath: fx.resourceManifest, rootDir: fx.root, out, clones: 3 });
    assert.deepEqual(await readdir(out), ["res-1.2.3.npk"]);
    assert.equal((await inspectShort(join(out, "res-1.2.3.npk"))).resourceContainer, true);
  });

  void it("fails cleanly on an unsupported compression", async () => {
    const out = join(fx.dir, "bad-compression");
    await mkdir(out);
    await assert.rejects(
      pack({ manifestPath: fx.manifest, rootDir: fx.root, out, fs: "erofs", compression: "xz" }),
      isNpkError("usage", /erofs does not support compression xz/),
    );
    assert.deepEqual(await readdir(out), []);
  });

  void it("stops on an aborted signal and leaves nothing behind", async () => {
    const out = join(fx.dir, "aborted");
    await mkdir(out);
    await assert.rejects(
      pack({ manifestPath: fx.manifest, rootDir: fx.root, out, signal: AbortSignal.abort() }),
    );
    assert.deepEqual(await readdir(out), []);
  });
});
