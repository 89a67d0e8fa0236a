// dm-verity hash tree and superblock in cryptsetup's on-disk format (superblock version 1,
// hash type 1: digest = sha256(salt || block)), as Northstar appends it to fs.img. Layout
// after the data: one 4096-byte block holding the 512-byte superblock, then the hash levels,
// top level first, each zero-padded to whole hash blocks. `veritysetup verify
// --hash-offset=<data size> img img <root>` accepts the result.
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { open } from "node:fs/promises";
import { NpkError } from "./errors.js";
import { hashDataBlocks, hashUpperLevels } from "./verity-pool.js";

export const VERITY_BLOCK_SIZE = 4096;
export const VERITY_DIGEST_SIZE = 32;
export const VERITY_SALT_SIZE = 32;
export const VERITY_SUPERBLOCK_SIZE = 512;
export const VERITY_ALGORITHM = "sha256";
export const VERITY_SIGNATURE = "verity";
export const VERITY_VERSION = 1;
export const VERITY_HASH_TYPE = 1;
const HASHES_PER_BLOCK = VERITY_BLOCK_SIZE / VERITY_DIGEST_SIZE;

export interface VeritySuperblock {
  version: number;
  hashType: number;
  uuid: Buffer;
  algorithm: string;
  dataBlockSize: number;
  hashBlockSize: number;
  dataBlocks: bigint;
  salt: Buffer;
}

export interface VerityTree {
  rootHash: Buffer;
  /** Superblock block (4096 bytes) followed by all hash levels, ready to append. */
  hashArea: Buffer;
  superblock: VeritySuperblock;
}

export interface DataRange {
  path: string;
  /** Offset of the first data byte in `path` (e.g. fs.img's offset inside an NPK). */
  offset: number;
  /** Data size in bytes; a multiple of VERITY_BLOCK_SIZE. */
  size: number;
}

export function encodeSuperblock(sb: VeritySuperblock): Buffer {
  const block = Buffer.alloc(VERITY_BLOCK_SIZE);
  block.write(VERITY_SIGNATURE, 0, "ascii");
  block.writeUInt32LE(sb.version, 8);
  block.writeUInt32LE(sb.hashType, 12);
  sb.uuid.copy(block, 16, 0, 16);
  block.write(sb.algorithm, 32, "ascii");
  block.writeUInt32LE(sb.dataBlockSize, 64);
  block.writeUInt32LE(sb.hashBlockSize, 68);
  block.writeBigUInt64LE(sb.dataBlocks, 72);
  block.writeUInt16LE(sb.salt.length, 80);
  sb.salt.copy(block, 88);
  return block;
}

/** Decodes and validates a superblock; only the parameters Skiff writes are accepted. */
export function decodeSuperblock(raw: Buffer): VeritySuperblock {
  if (raw.length < VERITY_SUPERBLOCK_SIZE) throw new NpkError("verity", "verity superblock is truncated");
  if (raw.toString("ascii", 0, 8) !== `${VERITY_SIGNATURE}\0\0`) {
    throw new NpkError("verity", "no verity superblock (bad signature)");
  }
  const saltSize = raw.readUInt16LE(80);
  const sb: VeritySuperblock = {
    version: raw.readUInt32LE(8),
    hashType: raw.readUInt32LE(12),
    uuid: Buffer.from(raw.subarray(16, 32)),
    algorithm: raw.toString("ascii", 32, 64).replace(/\0+$/, ""),
    dataBlockSize: raw.readUInt32LE(64),
    hashBlockSize: raw.readUInt32LE(68),
    dataBlocks: raw.readBigUInt64LE(72),
    salt: Buffer.from(raw.subarray(88, 88 + Math.min(saltSize, 256))),
  };
  const problem =
    sb.version !== VERITY_VERSION
      ? `unsupported superblock version ${sb.version}`
      : sb.hashType !== VERITY_HASH_TYPE
        ? `unsupported hash type ${sb.hashType}`
        : sb.algorithm !== VERITY_ALGORITHM
          ? `unsupported algorithm ${JSON.stringify(sb.algorithm)}`
          : sb.dataBlockSize !== VERITY_BLOCK_SIZE || sb.hashBlockSize !== VERITY_BLOCK_SIZE
            ? `unsupported block sizes ${sb.dataBlockSize}/${sb.hashBlockSize}`
            : saltSize > 256
              ? `salt size ${saltSize} exceeds 256`
              : undefined;
  if (problem !== undefined) throw new NpkError("verity", `verity superblock: ${problem}`);
  return sb;
}

/** Number of hash blocks per level, level 0 (hashes of data blocks) first. */
export function hashLevelBlocks(dataBlocks: number): number[] {
  const levels: number[] = [];
  let blocks = dataBlocks;
  while (blocks > 1) {
    blocks = Math.ceil(blocks / HASHES_PER_BLOCK);
    levels.push(blocks);
  }
  return levels;
}

/** Size of the area after the data: superblock block plus all hash levels. */
export function hashAreaSize(dataSize: number): number {
  const levels = hashLevelBlocks(dataSize / VERITY_BLOCK_SIZE);
  return VERITY_BLOCK_SIZE * (1 + levels.reduce((a, b) => a + b, 0));
}

function saltedDigest(salt: Buffer, block: Buffer): Buffer {
  return createHash(VERITY_ALGORITHM).update(salt).update(block).digest();
}

/** Builds the whole tree for `range`. Without `salt`/`uuid`, random ones are chosen. */
export async function buildVerityTree(
  range: DataRange,
  opts: { salt?: Buffer; uuid?: Buffer; signal?: AbortSignal } = {},
): Promise<VerityTree> {
  if (range.size % VERITY_BLOCK_SIZE !== 0 || range.size === 0) {
    throw new NpkError(
      "verity",
      `data size ${range.size} is not a positive multiple of ${VERITY_BLOCK_SIZE}`,
    );
  }
  const salt = opts.salt ?? randomBytes(VERITY_SALT_SIZE);
  const uuid = opts.uuid ?? Buffer.from(randomUUID().replaceAll("-", ""), "hex");
  const dataBlocks = range.size / VERITY_BLOCK_SIZE;
  const levels: Buffer[] = [];
  let rootHash: Buffer;
  if (dataBlocks === 1) {
    // No hash levels at all: the root is the digest of the single data block.
    const block = Buffer.alloc(VERITY_BLOCK_SIZE);
    const file = await open(range.path, "r");
    try {
      await file.read(block, 0, VERITY_BLOCK_SIZE, range.offset);
    } finally {
      await file.close();
    }
    rootHash = saltedDigest(salt, block);
  } else {
    // Off the event loop, on all cores (verity-pool.ts).
    const level0 = await hashDataBlocks(range.path, range.offset, dataBlocks, salt, opts.signal);
    const upper = await hashUpperLevels(level0, salt);
    levels.push(Buffer.from(level0), ...upper.levels);
    rootHash = upper.root;
  }
  const superblock: VeritySuperblock = {
    version: VERITY_VERSION,
    hashType: VERITY_HASH_TYPE,
    uuid,
    algorithm: VERITY_ALGORITHM,
    dataBlockSize: VERITY_BLOCK_SIZE,
    hashBlockSize: VERITY_BLOCK_SIZE,
    dataBlocks: BigInt(dataBlocks),
    salt,
  };
  const hashArea = Buffer.concat([encodeSuperblock(superblock), ...levels.reverse()]);
  return { rootHash, hashArea, superblock };
}

/** Appends superblock + hash tree to the image at `path`; returns the root hash and data size. */
export async function appendVerity(
  path: string,
  signal?: AbortSignal,
): Promise<{ rootHash: Buffer; verityOffset: number }> {
  const file = await open(path, "r+");
  try {
    const size = (await file.stat()).size;
    const tree = await buildVerityTree({ path, offset: 0, size }, { signal });
    await file.write(tree.hashArea, 0, tree.hashArea.length, size);
    return { rootHash: tree.rootHash, verityOffset: size };
  } finally {
    await file.close();
  }
}

/**
 * Userspace equivalent of `veritysetup verify`: re-hashes all data with the stored salt and
 * compares the complete stored hash area and the root hash. `hashOffset` is where the
 * superblock starts in `range.path`.
 */
export async function verifyVerity(
  range: DataRange,
  hashOffset: number,
  expectedRootHash: Buffer,
  signal?: AbortSignal,
): Promise<void> {
  const file = await open(range.path, "r");
  let stored: Buffer;
  let superblock: VeritySuperblock;
  try {
    const raw = Buffer.alloc(VERITY_BLOCK_SIZE);
    await file.read(raw, 0, VERITY_BLOCK_SIZE, hashOffset);
    superblock = decodeSuperblock(raw);
    if (superblock.dataBlocks * BigInt(VERITY_BLOCK_SIZE) !== BigInt(range.size)) {
      throw new NpkError(
        "verity",
        `superblock covers ${superblock.dataBlocks} blocks, data has ${range.size} bytes`,
      );
    }
    const areaSize = hashAreaSize(range.size);
    stored = Buffer.alloc(areaSize);
    const { bytesRead } = await file.read(stored, 0, areaSize, hashOffset);
    if (bytesRead !== areaSize) throw new NpkError("verity", "verity hash tree is truncated");
  } finally {
    await file.close();
  }
  const rebuilt = await buildVerityTree(range, { salt: superblock.salt, uuid: superblock.uuid, signal });
  if (!rebuilt.rootHash.equals(expectedRootHash)) {
    throw new NpkError(
      "verity",
      `verity root hash mismatch (expected ${expectedRootHash.toString("hex")}, data gives ${rebuilt.rootHash.toString("hex")})`,
    );
  }
  const storedTree = stored.subarray(VERITY_BLOCK_SIZE);
  if (!storedTree.equals(rebuilt.hashArea.subarray(VERITY_BLOCK_SIZE))) {
    throw new NpkError("verity", "stored verity hash tree does not match the data");
  }
}
