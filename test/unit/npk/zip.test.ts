import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, open, readFile, rm, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { NpkError } from "../../../src/npk/errors.js";
import {
  WindowedFile,
  checkEntryName,
  findEntry,
  readEntry,
  readZip,
  writeZip,
} from "../../../src/npk/zip.js";
import type { ZipArchive } from "../../../src/npk/zip.js";

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "skiff-zip-test-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function readArchive(path: string): Promise<ZipArchive> {
  const file = await open(path, "r");
  try {
    return await readZip(file);
  } finally {
    await file.close();
  }
}

async function rejectsWith(path: string, pattern: RegExp): Promise<void> {
  await assert.rejects(readArchive(path), (e: unknown) => {
    assert.ok(e instanceof NpkError, `expected NpkError, got ${String(e)}`);
    assert.equal(e.kind, "zip");
    assert.match(e.message, pattern);
    return true;
  });
}

async function sample(name: string, entries?: { name: string; data: Buffer }[]): Promise<string> {
  const path = join(dir, name);
  await writeZip(
    path,
    entries ?? [
      { name: "a.txt", data: Buffer.from("alpha\n") },
      { name: "big.bin", data: Buffer.alloc(10000, 7) },
    ],
    { comment: Buffer.from("version: 0.9.3\n") },
  );
  return path;
}

/** Offset of the first central directory header. */
function centralOffset(bytes: Buffer): number {
  return bytes.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]));
}

void describe("zip writer and reader", () => {
  void it("round-trips stored entries and the comment", async () => {
    const path = await sample("round.zip");
    const archive = await readArchive(path);
    assert.equal(archive.comment.toString(), "version: 0.9.3\n");
    assert.deepEqual(
      archive.entries.map((e) => e.name),
      ["a.txt", "big.bin"],
    );
    const file = await open(path, "r");
    try {
      const a = findEntry(archive, "a.txt");
      assert.ok(a);
      assert.equal((await readEntry(file, a)).toString(), "alpha\n");
    } finally {
      await file.close();
    }
  });

  void it("aligns a file-backed entry to 4096 bytes", async () => {
    const source = join(dir, "payload");
    await writeFile(source, Buffer.alloc(8192, 1));
    const path = join(dir, "aligned.zip");
    await writeZip(
      path,
      [
        { name: "manifest.yaml", data: Buffer.from("name: x\n") },
        { name: "fs.img", data: { path: source }, align: 4096 },
      ],
      { comment: Buffer.alloc(0) },
    );
    const entry = findEntry(await readArchive(path), "fs.img");
    assert.ok(entry);
    assert.equal(entry.dataOffset % 4096, 0);
    const bytes = await readFile(path);
    assert.ok(bytes.subarray(entry.dataOffset, entry.dataOffset + 8192).equals(Buffer.alloc(8192, 1)));
  });

  void it("rejects a truncated archive", async () => {
    const path = await sample("truncated.zip");
    await truncate(path, 5000);
    await rejectsWith(path, /end of central directory|truncated/);
  });

  void it("rejects an archive cut inside the central directory", async () => {
    const path = await sample("cut-cd.zip");
    const bytes = await readFile(path);
    const cd = centralOffset(bytes);
    // Keep the end record but drop part of the central directory before it.
    await writeFile(
      path,
      Buffer.concat([bytes.subarray(0, cd + 10), bytes.subarray(bytes.length - 22 - 15)]),
    );
    await rejectsWith(path, /truncated|corrupt/);
  });

  void it("rejects a compressed entry", async () => {
    const path = await sample("deflated.zip");
    const bytes = await readFile(path);
    bytes.writeUInt16LE(8, centralOffset(bytes) + 10); // method 8 = deflate
    await writeFile(path, bytes);
    await rejectsWith(path, /"a.txt" is compressed \(method 8\)/);
  });

  void it("rejects a data descriptor flag", async () => {
    const path = await sample("descriptor.zip");
    const bytes = await readFile(path);
    bytes.writeUInt16LE(8, centralOffset(bytes) + 8);
    await writeFile(path, bytes);
    await rejectsWith(path, /data descriptor/);
  });

  void it("rejects a local header that disagrees with the central directory", async () => {
    const path = await sample("mismatch.zip");
    const bytes = await readFile(path);
    bytes.writeUInt32LE(5, 22); // uncompressed size of the first local header
    await writeFile(path, bytes);
    await rejectsWith(path, /local header disagrees/);
  });

  void it("rejects overlapping entries", async () => {
    const path = await sample("overlap.zip");
    const bytes = await readFile(path);
    // Grow a.txt (local and central) so it runs into big.bin's local header.
    bytes.writeUInt32LE(100, 18);
    bytes.writeUInt32LE(100, 22);
    const cd = centralOffset(bytes);
    bytes.writeUInt32LE(100, cd + 20);
    bytes.writeUInt32LE(100, cd + 24);
    await writeFile(path, bytes);
    await rejectsWith(path, /overlap/);
  });

  for (const bad of ["../escape", "/etc/passwd", "a/../../b", "dir\\file"]) {
    void it(`rejects the entry name ${bad}`, async () => {
      const path = await sample(`bad-${bad.length}.zip`, [{ name: bad, data: Buffer.from("x") }]);
      await rejectsWith(path, /entry name .* (absolute|'\.\.'|backslash)/);
    });
  }

  void it("detects a corrupted entry through its CRC", async () => {
    const path = await sample("crc.zip");
    const archive = await readArchive(path);
    const a = findEntry(archive, "a.txt");
    assert.ok(a);
    const bytes = await readFile(path);
    bytes[a.dataOffset] = 0x41;
    await writeFile(path, bytes);
    const file = await open(path, "r");
    try {
      await assert.rejects(readEntry(file, a), /CRC-32/);
    } finally {
      await file.close();
    }
  });

  void it("accepts ordinary relative names", () => {
    checkEntryName("manifest.yaml");
    checkEntryName("dir/file.txt");
  });
});

void describe("WindowedFile", () => {
  void it("reads what the file holds, from its windows or from the file", async () => {
    for (const size of [0, 100, 80 * 1024, 300 * 1024]) {
      const path = join(dir, `windowed-${size}.bin`);
      const bytes = randomBytes(size);
      await writeFile(path, bytes);
      const handle = await open(path, "r");
      try {
        const file = await WindowedFile.open(handle);
        assert.equal((await file.stat()).size, size);
        const spans: [number, number][] = [
          [0, 0],
          [0, Math.min(size, 30)],
          [Math.max(0, size - 22), Math.min(size, 22)],
          [4096, 1028], // fs.img's head
          [8 * 1024 - 10, 20], // across the head window's end
          [Math.max(0, size - 70_000), 1000], // before the tail window
          [Math.floor(size / 2), 4096],
          [Math.max(0, size - 5), 10], // past the end: a short read, as from the file
        ];
        for (const [position, length] of spans) {
          const got = Buffer.alloc(length + 4);
          const { bytesRead } = await file.read(got, 2, length, position);
          const want = bytes.subarray(position, Math.min(size, position + length));
          assert.equal(bytesRead, want.length, `read of ${length} at ${position} in ${size}`);
          assert.ok(
            got.subarray(2, 2 + bytesRead).equals(want),
            `bytes of ${length} at ${position} in ${size}`,
          );
        }
      } finally {
        await handle.close();
      }
    }
  });
});
