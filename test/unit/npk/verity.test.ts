import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { NpkError } from "../../../src/npk/errors.js";
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

  void it("hashes a large image on several threads exactly as block by block", async () => {
    // 5000 data blocks (about 20 MiB): split among the threads on a machine with 2 or more cores.
    const blocks = 5000;
    const offset = 3 * VERITY_BLOCK_SIZE;
    const path = join(dir, "large.img");
    const data = randomBytes(blocks * VERITY_BLOCK_SIZE);
    await writeFile(path, Buffer.concat([randomBytes(offset), data]));
    const salt = randomBytes(32);
    const tree = await buildVerityTree({ path, offset, size: data.length }, { salt, uuid: randomBytes(16) });
    // The reference, level by level on this thread.
    const digest = (block: Buffer): Buffer => createHash("sha256").update(salt).update(block).digest();
    const levels: Buffer[] = [];
    let below = data;
    while (below.length > VERITY_BLOCK_SIZE) {
      const count = below.length / VERITY_BLOCK_SIZE;
      const level = Buffer.alloc(Math.ceil((count * 32) / VERITY_BLOCK_SIZE) * VERITY_BLOCK_SIZE);
      for (let b = 0; b < count; b++)
        digest(below.subarray(b * VERITY_BLOCK_SIZE, (b + 1) * VERITY_BLOCK_SIZE)).copy(level, b * 32);
      levels.push(level);
      below = level;
    }
    assert.ok(tree.rootHash.equals(digest(below)));
    assert.ok(tree.hashArea.subarray(VERITY_BLOCK_SIZE).equals(Buffer.concat([...levels].reverse())));
    await writeFile(path, tree.hashArea, { flag: "a" });
    await verifyVerity({ path, offset, size: data.length }, offset + data.length, tree.rootHash);
  });

  void it("refuses data that ends early", async () => {
    const path = join(dir, "short.img");
    await writeFile(path, randomBytes(3000 * VERITY_BLOCK_SIZE));
    await assert.rejects(
      buildVerityTree({ path, offset: 0, size: 5000 * VERITY_BLOCK_SIZE }),
      (e: unknown) => e instanceof NpkError && e.kind === "verity" && /truncated/.test(e.message),
    );
  });

  void it("stops when the signal is aborted while hashing", async () => {
    const path = join(dir, "abort-late.img");
    await writeFile(path, randomBytes(5000 * VERITY_BLOCK_SIZE));
    const controller = new AbortController();
    const tree = buildVerityTree(
      { path, offset: 0, size: 5000 * VERITY_BLOCK_SIZE },
      { signal: controller.signal },
    );
    controller.abort();
    await assert.rejects(tree, { name: "AbortError" });
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
