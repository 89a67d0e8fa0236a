// dm-verity hashing off the event loop, on all cores. Hashing a 50 MiB image is ~12800 sha256
// calls (~40 ms of CPU on the dev machine): on the daemon's loop it took that long from every
// other request (in slices of one 1 MiB read), its 12800 hash objects were the loop's largest
// garbage, and it ran on one core after the upload. The data
// blocks are split among up to MAX_THREADS worker threads (verity-worker.ts), each reading its
// part with one reused buffer and writing the digests into one shared level-0 buffer; the small
// levels above are built by one thread afterwards.
//
// INVARIANTS: `threads` holds the live workers; `pending` holds exactly the jobs posted to a
// live worker and not yet answered, each with the worker it was posted to; a worker that errs or
// exits fails exactly its own pending jobs and leaves `threads`; workers are ref'd only while
// they have pending jobs (an idle pool never keeps a process alive); `idleExit` runs exactly
// while workers exist and no job is pending, and ends them all (each is a V8 isolate of a few
// MiB; the next job starts new ones).
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import { NpkError } from "./errors.js";
import type { VerityAnswer, VerityJob } from "./verity-worker.js";

const BLOCK = 4096;
const DIGEST = 32;
/** Threads at most, however many cores: the hashing reads the page cache, memory bandwidth bounds it. */
const MAX_THREADS = 4;
/** Data blocks per thread at least (8 MiB): below that a second thread costs more than it saves. */
const MIN_BLOCKS_PER_THREAD = 2048;
/** Idle threads end after this long: a daemon hashes at install and at a userspace-checked mount. */
const IDLE_EXIT_MS = 10_000;
const THREAD_HEAP_MB = 16;

type JobBody = VerityJob extends infer J ? (J extends VerityJob ? Omit<J, "id"> : never) : never;

interface Pending {
  thread: Worker;
  resolve: (answer: Extract<VerityAnswer, { ok: true }>) => void;
  reject: (e: Error) => void;
}

/** A part stopped because another failed or the caller aborted; never the answer itself. */
class Cancelled extends Error {
  override name = "Cancelled";
}

/**
 * The hashing itself failed (a thread died, a read failed): the daemon's trouble, not the
 * package's, so not an NpkError (which would refuse the package as invalid).
 */
export class VerityHashingError extends Error {
  override name = "VerityHashingError";
}

const threads: Worker[] = [];
const pending = new Map<number, Pending>();
let idleExit: NodeJS.Timeout | undefined;
let nextId = 0;

function pendingOn(thread: Worker): number {
  let n = 0;
  for (const p of pending.values()) if (p.thread === thread) n++;
  return n;
}

function retire(thread: Worker, reason: string): void {
  const at = threads.indexOf(thread);
  if (at >= 0) threads.splice(at, 1);
  for (const [id, p] of pending) {
    if (p.thread !== thread) continue;
    pending.delete(id);
    p.reject(new VerityHashingError(`verity hashing thread ${reason}`));
  }
  if (pending.size === 0) armIdleExit();
}

function startThread(): Worker {
  const thread = new Worker(new URL("./verity-worker.js", import.meta.url), {
    resourceLimits: { maxOldGenerationSizeMb: THREAD_HEAP_MB },
  });
  thread.on("message", (answer: VerityAnswer) => {
    const job = pending.get(answer.id);
    if (job === undefined) return;
    pending.delete(answer.id);
    if (pendingOn(thread) === 0) thread.unref();
    if (pending.size === 0) armIdleExit();
    if (answer.ok) job.resolve(answer);
    else if (answer.reason === "cancelled") job.reject(new Cancelled("cancelled"));
    else if (answer.reason === "truncated") job.reject(new NpkError("verity", answer.message));
    else job.reject(new VerityHashingError(`verity hashing failed: ${answer.message}`));
  });
  thread.on("error", (error) => retire(thread, `failed: ${error.message}`));
  thread.on("exit", (code) => retire(thread, `exited (code ${code})`));
  thread.unref();
  threads.push(thread);
  return thread;
}

function armIdleExit(): void {
  clearTimeout(idleExit);
  idleExit = undefined;
  if (threads.length === 0) return;
  idleExit = setTimeout(() => {
    idleExit = undefined;
    if (pending.size !== 0) return;
    // Out of `threads` first: their exits then fail nobody's job.
    for (const thread of threads.splice(0)) void thread.terminate();
  }, IDLE_EXIT_MS);
  idleExit.unref();
}

function threadCount(): number {
  return Math.max(1, Math.min(MAX_THREADS, availableParallelism()));
}

/** Threads for `blocks` data blocks: one per core, but none with fewer than MIN_BLOCKS_PER_THREAD. */
function partsFor(blocks: number): number {
  return Math.max(1, Math.min(threadCount(), Math.floor(blocks / MIN_BLOCKS_PER_THREAD)));
}

/**
 * Starts the hashing threads ahead of a hash that is coming (an upload of `bytes` being
 * received), so that their start-up (a V8 isolate each) overlaps the upload instead of following
 * it; as many as an image of that size will use.
 */
export function prepareVerityThreads(bytes: number): void {
  clearTimeout(idleExit);
  idleExit = undefined;
  const wanted = partsFor(Math.floor(bytes / BLOCK));
  while (threads.length < wanted) startThread();
  if (pending.size === 0) armIdleExit();
}

function post(thread: Worker, body: JobBody): Promise<Extract<VerityAnswer, { ok: true }>> {
  clearTimeout(idleExit);
  idleExit = undefined;
  const id = nextId++;
  return new Promise((resolve, reject) => {
    pending.set(id, { thread, resolve, reject });
    thread.ref();
    thread.postMessage({ ...body, id } as VerityJob);
  });
}

/**
 * The level-0 hashes of `blocks` data blocks of `path` from byte `offset`, zero-padded to whole
 * hash blocks. Rejects with NpkError("verity") when the file ends early (the package's fault),
 * with VerityHashingError when the hashing failed otherwise; with the signal's
 * reason when aborted (the threads stop within one read).
 */
export async function hashDataBlocks(
  path: string,
  offset: number,
  blocks: number,
  salt: Buffer,
  signal?: AbortSignal,
): Promise<SharedArrayBuffer> {
  signal?.throwIfAborted();
  const perBlock = BLOCK / DIGEST;
  const level0 = new SharedArrayBuffer(Math.ceil(blocks / perBlock) * BLOCK);
  const parts = partsFor(blocks);
  while (threads.length < parts) startThread();
  const cancel = new Int32Array(new SharedArrayBuffer(4));
  const onAbort = (): void => void Atomics.store(cancel, 0, 1);
  signal?.addEventListener("abort", onAbort, { once: true });
  const share = Math.ceil(blocks / parts);
  try {
    const jobs: Promise<unknown>[] = [];
    for (let p = 0, first = 0; first < blocks; p++, first += share) {
      const job = post(threads[p]!, {
        kind: "blocks",
        path,
        offset: offset + first * BLOCK,
        blocks: Math.min(share, blocks - first),
        salt,
        out: level0,
        outOffset: first * DIGEST,
        cancel,
      });
      // A failed part stops the others at their next read.
      jobs.push(
        job.catch((e: unknown) => {
          Atomics.store(cancel, 0, 1);
          throw e;
        }),
      );
    }
    // Every part settles before the answer: no thread still writes into level0 after it.
    const results = await Promise.allSettled(jobs);
    signal?.throwIfAborted();
    // The failure that cancelled the others, not one of their cancellations.
    const failures = results.flatMap((r) => (r.status === "rejected" ? [r.reason as Error] : []));
    const cause = failures.find((e) => !(e instanceof Cancelled)) ?? failures[0];
    if (cause !== undefined) throw cause;
    return level0;
  } catch (e) {
    Atomics.store(cancel, 0, 1);
    throw e;
  } finally {
    signal?.removeEventListener("abort", onAbort);
  }
}

/** The hash levels above `level0` (level 1 first) and the root digest, built by one thread. */
export async function hashUpperLevels(
  level0: SharedArrayBuffer,
  salt: Buffer,
): Promise<{ levels: Buffer[]; root: Buffer }> {
  const thread = threads[0] ?? startThread();
  const answer = await post(thread, { kind: "levels", level0, salt });
  return {
    levels: (answer.levels ?? []).map((b) => Buffer.from(b)),
    root: Buffer.from(answer.root!),
  };
}
