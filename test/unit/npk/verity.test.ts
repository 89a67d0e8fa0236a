import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  VERITY_BLOCK_SIZE,
  appendVerity,
  buildVerityTree,
  decodeSuperblock,
  encodeSuperblock,
  hashAreaSize,
  hashLevelBlocks,
  verifyVerity,
} from "../../../src/npk/verity.js";

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "skiff-verity-test-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

void describe("dm-verity", () => {
  void it("lays out hash levels like cryptsetup", () => {
    assert.deepEqual(hashLevelBlocks(1), []);
    assert.deepEqual(hashLevelBlocks(2), [1]);
    assert.deepEqual(hashLevelBlocks(128), [1]);
    assert.deepEqual(hashLevelBlocks(129), [2, 1]);
    assert.deepEqual(hashLevelBlocks(128 * 128 + 1), [129, 2, 1]);
    assert.equal(hashAreaSize(129 * VERITY_BLOCK_SIZE), 4 * VERITY_BLOCK_SIZE);
  });

  void it("encodes and decodes the superblock", () => {
    const sb = {
      version: 1,
      hashType: 1,
      uuid: randomBytes(16),
      algorithm: "sha256",
      dataBlockSize: 4096,
      hashBlockSize: 4096,
      dataBlocks: 77n,
      salt: randomBytes(32),
    };
    const raw = encodeSuperblock(sb);
    assert.equal(raw.length, VERITY_BLOCK_SIZE);
    assert.equal(raw.toString("ascii", 0, 6), "verity");
    assert.deepEqual(decodeSuperblock(raw), sb);
    raw.write("md5\0\0\0", 32, "ascii");
    assert.throws(() => decodeSuperblock(raw), /unsupported algorithm "md5"/);
  });

  void it("is deterministic for a given salt", async () => {
    const path = join(dir, "det.img");
    await writeFile(path, randomBytes(130 * VERITY_BLOCK_SIZE));
    const salt = randomBytes(32);
    const uuid = randomBytes(16);
    const range = { path, offset: 0, size: 130 * VERITY_BLOCK_SIZE };
    const a = await buildVerityTree(range, { salt, uuid });
    const b = await buildVerityTree(range, { salt, uuid });
    assert.ok(a.rootHash.equals(b.rootHash));
    assert.ok(a.hashArea.equals(b.hashArea));
    assert.equal(a.hashArea.length, hashAreaSize(range.size));
  });

  void it("appends a tree that verifies, and catches a flipped data byte", async () => {
    const path = join(dir, "image.img");
    const size = 300 * VERITY_BLOCK_SIZE;
    await writeFile(path, randomBytes(size));
    const { rootHash, verityOffset } = await appendVerity(path);
    assert.equal(verityOffset, size);
    assert.equal((await stat(path)).size, size + hashAreaSize(size));
    const range = { path, offset: 0, size };
    await verifyVerity(range, size, rootHash);
    const bytes = await readFile(path);
    bytes[12345] = (bytes[12345] ?? 0) ^ 1;
    await writeFile(path, bytes);
    await assert.rejects(verifyVerity(range, size, rootHash), /root hash mismatch/);
  });

  void it("catches a corrupted hash tree", async () => {
    const path = join(dir, "tree.img");
    const size = 200 * VERITY_BLOCK_SIZE;
    await writeFile(path, randomBytes(size));
    const { rootHash } = await appendVerity(path);
    const bytes = await readFile(path);
    const lastTreeByte = bytes.length - 1;
    bytes[lastTreeByte] = (bytes[lastTreeByte] ?? 0) ^ 0xff;
    await writeFile(path, bytes);
    await assert.rejects(verifyVerity({ path, offset: 0, size }, size, rootHash), /hash tree does not match/);
  });

  void it("honours an aborted signal", async () => {
    const path = join(dir, "abort.img");
    await writeFile(path, randomBytes(8 * VERITY_BLOCK_SIZE));
    await assert.rejects(
      buildVerityTree({ path, offset: 0, size: 8 * VERITY_BLOCK_SIZE }, { signal: AbortSignal.abort() }),
      { name: "AbortError" },
    );
  });
});
