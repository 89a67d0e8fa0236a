// The thread side of verity-pool.ts: hashes dm-verity blocks (digest = sha256(salt || block),
// hash type 1) without holding the daemon's event loop. Imports nothing of Skiff's so that a
// thread starts in a few milliseconds.
//
// Wire format (structured clone over the worker's port):
//   job    { id, kind: "blocks", path, offset, blocks, salt, out, outOffset, cancel }
//            hashes `blocks` 4096-byte blocks of `path` from byte `offset` into the
//            SharedArrayBuffer `out` at byte `outOffset` (32 bytes per block, in order);
//            `cancel` is an Int32Array on a SharedArrayBuffer: non-zero asks to stop (checked
//            between reads, every READ_BLOCKS blocks).
//          { id, kind: "levels", level0, salt }
//            builds the levels above `level0` (a SharedArrayBuffer of whole, zero-padded hash
//            blocks) and the root digest.
//   answer { id, ok: true, levels?: ArrayBuffer[] (level 1 first), root?: ArrayBuffer }
//          { id, ok: false, reason: "truncated" | "cancelled" | "failed", message }
import { hash } from "node:crypto";
import { closeSync, openSync, readSync } from "node:fs";
import { parentPort } from "node:worker_threads";

const BLOCK = 4096;
const DIGEST = 32;
/** Blocks per read(2): 1 MiB, one buffer reused for every job of this thread. */
const READ_BLOCKS = 256;

export type VerityJob =
  | {
      id: number;
      kind: "blocks";
      path: string;
      offset: number;
      blocks: number;
      salt: Uint8Array;
      out: SharedArrayBuffer;
      outOffset: number;
      cancel: Int32Array;
    }
  | { id: number; kind: "levels"; level0: SharedArrayBuffer; salt: Uint8Array };

export type VerityAnswer =
  | { id: number; ok: true; levels?: ArrayBuffer[]; root?: ArrayBuffer }
  | { id: number; ok: false; reason: "truncated" | "cancelled" | "failed"; message: string };

class Stop extends Error {
  constructor(
    readonly reason: "truncated" | "cancelled",
    message: string,
  ) {
    super(message);
  }
}

const readBuffer = Buffer.allocUnsafe(READ_BLOCKS * BLOCK);
/** salt || block, the salt copied once per job: one hash call per block, no allocation but the digest. */
let scratch = Buffer.alloc(0);

function saltedScratch(salt: Uint8Array): Buffer {
  if (scratch.length !== salt.length + BLOCK) scratch = Buffer.allocUnsafe(salt.length + BLOCK);
  scratch.set(salt, 0);
  return scratch;
}

function hashBlocks(job: Extract<VerityJob, { kind: "blocks" }>): void {
  const input = saltedScratch(job.salt);
  const out = new Uint8Array(job.out, job.outOffset, job.blocks * DIGEST);
  const fd = openSync(job.path, "r");
  try {
    for (let done = 0; done < job.blocks; ) {
      if (Atomics.load(job.cancel, 0) !== 0) throw new Stop("cancelled", "cancelled");
      const want = Math.min(READ_BLOCKS, job.blocks - done) * BLOCK;
      let got = 0;
      while (got < want) {
        const n = readSync(fd, readBuffer, got, want - got, job.offset + done * BLOCK + got);
        if (n === 0) break;
        got += n;
      }
      if (got < want) {
        throw new Stop(
          "truncated",
          `data is truncated: ${done + Math.floor(got / BLOCK)} of ${job.blocks} blocks`,
        );
      }
      for (let at = 0; at < want; at += BLOCK, done++) {
        readBuffer.copy(input, job.salt.length, at, at + BLOCK);
        out.set(hash("sha256", input, "buffer"), done * DIGEST);
      }
    }
  } finally {
    closeSync(fd);
  }
}

/** The levels above level 0 up to one hash block, and the root digest of that block. */
function buildLevels(job: Extract<VerityJob, { kind: "levels" }>): {
  levels: ArrayBuffer[];
  root: ArrayBuffer;
} {
  const input = saltedScratch(job.salt);
  const levels: ArrayBuffer[] = [];
  let level: Uint8Array = new Uint8Array(job.level0);
  while (level.length > BLOCK) {
    const blocks = level.length / BLOCK;
    const above = new Uint8Array(Math.ceil((blocks * DIGEST) / BLOCK) * BLOCK);
    for (let b = 0; b < blocks; b++) {
      input.set(level.subarray(b * BLOCK, (b + 1) * BLOCK), job.salt.length);
      above.set(hash("sha256", input, "buffer"), b * DIGEST);
    }
    levels.push(above.buffer);
    level = above;
  }
  input.set(level.subarray(0, BLOCK), job.salt.length);
  const root = hash("sha256", input, "buffer");
  return { levels, root: root.buffer.slice(root.byteOffset, root.byteOffset + root.length) };
}

function serve(job: VerityJob): VerityAnswer {
  try {
    switch (job.kind) {
      case "blocks":
        hashBlocks(job);
        return { id: job.id, ok: true };
      case "levels": {
        const { levels, root } = buildLevels(job);
        return { id: job.id, ok: true, levels, root };
      }
    }
  } catch (e) {
    if (e instanceof Stop) return { id: job.id, ok: false, reason: e.reason, message: e.message };
    return { id: job.id, ok: false, reason: "failed", message: (e as Error).message ?? String(e) };
  }
}

parentPort?.on("message", (job: VerityJob) => {
  const answer = serve(job);
  const transfer = answer.ok ? [...(answer.levels ?? []), ...(answer.root ? [answer.root] : [])] : [];
  parentPort!.postMessage(answer, transfer);
});
