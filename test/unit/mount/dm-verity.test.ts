import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  isVerityMountSource,
  parseVerityCorruption,
  verityDeviceName,
  verityNamePrefix,
  verityTable,
} from "../../../src/daemon/mount/dm-verity.js";
import { NpkError } from "../../../src/npk/errors.js";

const ROOT = "a".repeat(64);
const SALT = Buffer.from("00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff", "hex");

void describe("verityTable", () => {
  void it("maps the data blocks and starts the hash tree after the superblock block", () => {
    assert.equal(
      verityTable({ device: "/dev/loop7", dataBlocks: 49, rootHash: ROOT, salt: SALT }),
      `0 392 verity 1 /dev/loop7 /dev/loop7 4096 4096 49 50 sha256 ${ROOT} ${SALT.toString("hex")}`,
    );
  });

  void it("accepts major:minor and writes an empty salt as -", () => {
    assert.match(
      verityTable({ device: "7:3", dataBlocks: 1, rootHash: ROOT, salt: Buffer.alloc(0) }),
      / 7:3 7:3 4096 4096 1 2 sha256 a{64} -$/,
    );
  });

  void it("refuses anything that could smuggle fields into the table", () => {
    const ok = { device: "/dev/loop0", dataBlocks: 8, rootHash: ROOT, salt: SALT };
    for (const bad of [
      { ...ok, device: "/dev/loop0 /dev/sda" },
      { ...ok, device: "/dev/sda" },
      { ...ok, rootHash: `${"a".repeat(63)} ` },
      { ...ok, rootHash: "A".repeat(64) },
      { ...ok, dataBlocks: 0 },
      { ...ok, dataBlocks: 1.5 },
      { ...ok, salt: Buffer.alloc(257) },
    ]) {
      assert.throws(() => verityTable(bad), NpkError, JSON.stringify({ ...bad, salt: bad.salt.length }));
    }
  });
});

void describe("verity device names", () => {
  const prefix = verityNamePrefix("/var/lib/skiff/run");

  void it("are hex below a prefix that is the daemon's run directory", () => {
    assert.match(prefix, /^skiff-[0-9a-f]{12}-$/);
    assert.equal(verityNamePrefix("/var/lib/skiff/run/"), prefix);
    assert.notEqual(verityNamePrefix("/tmp/other/run"), prefix);
    const name = verityDeviceName(prefix, "default", "hello:1.0.0");
    assert.match(name, /^skiff-[0-9a-f]{12}-[0-9a-f]{24}$/);
    assert.ok(name.startsWith(prefix));
  });

  void it("are stable and differ by repository and container", () => {
    const a = verityDeviceName(prefix, "default", "hello:1.0.0");
    assert.equal(verityDeviceName(prefix, "default", "hello:1.0.0"), a);
    assert.notEqual(verityDeviceName(prefix, "other", "hello:1.0.0"), a);
    assert.notEqual(verityDeviceName(prefix, "default", "hello:1.0.1"), a);
    // The separator keeps "ab" + "c" apart from "a" + "bc".
    assert.notEqual(verityDeviceName(prefix, "ab", "c:1.0.0"), verityDeviceName(prefix, "a", "bc:1.0.0"));
  });

  void it("stay short and safe for hostile names", () => {
    const name = verityDeviceName(prefix, "../../x y", `${"n".repeat(1024)}:1.0.0`);
    assert.match(name, /^[a-z0-9-]{1,127}$/);
    assert.throws(() => verityDeviceName("skiff-../", "r", "c:1.0.0"));
  });
});

void describe("isVerityMountSource", () => {
  void it("knows the kernel node and the udev name", () => {
    const device = { name: "skiff-x", device: "/dev/dm-3" };
    assert.ok(isVerityMountSource("/dev/dm-3", device));
    assert.ok(isVerityMountSource("/dev/mapper/skiff-x", device));
    assert.ok(!isVerityMountSource("/dev/dm-30", device));
    assert.ok(!isVerityMountSource("/dev/loop3", device));
  });
});

void describe("parseVerityCorruption", () => {
  void it("reads the kernel's corruption message, with or without a time stamp", () => {
    assert.deepEqual(parseVerityCorruption("device-mapper: verity: 254:0: data block 53 is corrupted"), {
      device: "254:0",
      kind: "data",
      block: 53,
    });
    assert.deepEqual(
      parseVerityCorruption("[   12.5] device-mapper: verity: 253:12: metadata block 7 is corrupted"),
      { device: "253:12", kind: "metadata", block: 7 },
    );
  });

  void it("ignores other kernel messages", () => {
    assert.equal(parseVerityCorruption("device-mapper: verity: 254:0: reached maximum errors"), undefined);
    assert.equal(
      parseVerityCorruption("SQUASHFS error: Unable to read page, block 2000, size 8000"),
      undefined,
    );
  });
});
