// Parsing a manifest off the event loop. A manifest within MANIFEST_LIMITS still takes the
// `yaml` package up to ~100 ms (64 KiB of small values), far more than one request may hold
// the daemon's loop, so openNpk hands the text to one shared worker thread. The worker also
// fences memory (resourceLimits) and time (PARSE_TIMEOUT_MS): should a limit ever miss a
// hostile input, the worker dies or is ended, the caller gets a ManifestError, and the next
// parse starts a fresh worker.
//
// INVARIANTS: one worker at a time; `pending` holds exactly the jobs posted to `worker` and not
// yet answered; `watchdog` runs exactly while `pending` is non-empty and `worker` has said it is
// ready, and was (re)started when the oldest pending job became the one the worker is on (or
// when the worker became ready: starting a thread and loading the parser is not parsing, and
// takes seconds on a slow machine, e.g. under emulation); the worker is ref'd only while
// `pending` is non-empty, so an idle parser never keeps a process alive; `idleExit` runs exactly
// while a worker exists and `pending` is empty, and ends that worker when it fires (a thread with
// its own V8 isolate and the parser loaded holds several MiB of the daemon's RSS; the next parse
// starts a fresh one).
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";
import { ManifestError, type ManifestIssue } from "./errors.js";
import { parseManifest, type ManifestFormat } from "./parse.js";
import type { Manifest } from "./types.js";

/**
 * The worker must answer its oldest job within this time (jobs run one after the other, so a
 * queue of many packages at startup does not add up); otherwise it is ended. The limits keep
 * real parses in milliseconds.
 */
export const PARSE_TIMEOUT_MS = 5_000;
/** A worker that has not loaded the parser by then is broken (not slow): its jobs fail. */
const STARTUP_TIMEOUT_MS = 120_000;
const WORKER_HEAP_MB = 64;
/** An idle worker ends after this long: a daemon parses at start-up and install, rarely between. */
const IDLE_EXIT_MS = 10_000;
/** Marks the thread this module serves in (other workers may import it as a library). */
const ROLE = "skiff-manifest-parser";

interface Job {
  id: number;
  text: string;
  format: ManifestFormat;
}
type Answer =
  | { ready: true }
  | { id: number; ok: true; manifest: Manifest }
  | { id: number; ok: false; issues: ManifestIssue[] | undefined; message: string };

interface Pending {
  resolve: (m: Manifest) => void;
  reject: (e: Error) => void;
}

let worker: Worker | undefined;
/** The current worker has loaded the parser and serves jobs. */
let workerReady = false;
const pending = new Map<number, Pending>();
let watchdog: NodeJS.Timeout | undefined;
let idleExit: NodeJS.Timeout | undefined;
let nextId = 0;

function failAll(reason: string): void {
  const jobs = [...pending.values()];
  pending.clear();
  worker = undefined;
  workerReady = false;
  clearTimeout(watchdog);
  watchdog = undefined;
  clearTimeout(idleExit);
  idleExit = undefined;
  for (const job of jobs) job.reject(new ManifestError([{ path: "", reason }]));
}

/** (Re)starts the deadline of the job the worker is on. */
function armWatchdog(w: Worker): void {
  clearTimeout(watchdog);
  watchdog = undefined;
  if (pending.size === 0) return;
  watchdog = setTimeout(() => {
    // Ending the worker fails every job it holds; the next parse starts a new one.
    failAll(`manifest parse took longer than ${PARSE_TIMEOUT_MS} ms`);
    void w.terminate();
  }, PARSE_TIMEOUT_MS);
  watchdog.unref();
}

function startWorker(): Worker {
  const w = new Worker(new URL(import.meta.url), {
    workerData: ROLE,
    resourceLimits: { maxOldGenerationSizeMb: WORKER_HEAP_MB },
  });
  const startup = setTimeout(() => {
    if (worker !== w) return;
    failAll(`manifest parser did not start within ${STARTUP_TIMEOUT_MS} ms`);
    void w.terminate();
  }, STARTUP_TIMEOUT_MS);
  startup.unref();
  w.on("message", (answer: Answer) => {
    if ("ready" in answer) {
      clearTimeout(startup);
      if (worker !== w) return;
      workerReady = true;
      armWatchdog(w); // the jobs posted meanwhile are queued in the worker; the oldest is next
      return;
    }
    const job = pending.get(answer.id);
    if (job === undefined) return;
    pending.delete(answer.id);
    armWatchdog(w);
    if (pending.size === 0) {
      w.unref();
      armIdleExit(w);
    }
    if (answer.ok) job.resolve(answer.manifest);
    else job.reject(answer.issues ? new ManifestError(answer.issues) : new Error(answer.message));
  });
  w.on("error", (error) => {
    if (worker === w) failAll(`manifest parser failed: ${error.message}`);
  });
  w.on("exit", (code) => {
    if (worker === w) failAll(`manifest parser exited (code ${code})`);
  });
  return w;
}

/** Ends `w` once it has been idle for IDLE_EXIT_MS; the next parse starts a new worker. */
function armIdleExit(w: Worker): void {
  clearTimeout(idleExit);
  idleExit = setTimeout(() => {
    idleExit = undefined;
    if (worker !== w || pending.size !== 0) return;
    worker = undefined; // before terminate: its exit is then no failure of anyone's job
    workerReady = false;
    void w.terminate();
  }, IDLE_EXIT_MS);
  idleExit.unref();
}

/**
 * Starts the worker ahead of a parse that is coming (an upload being received), so that its
 * start-up (a thread, an isolate, the parser loaded: tens of ms) overlaps the upload. An unused
 * worker ends after IDLE_EXIT_MS like any idle one.
 */
export function prepareManifestParser(): void {
  if (worker !== undefined) return;
  worker = startWorker();
  workerReady = false;
  worker.unref();
  armIdleExit(worker);
}

/** Parses, decodes and validates a manifest in the shared worker thread. Rejects with ManifestError. */
export function parseManifestOffLoop(text: string, format: ManifestFormat = "yaml"): Promise<Manifest> {
  return new Promise((resolve, reject) => {
    if (worker === undefined) {
      worker = startWorker();
      workerReady = false;
    }
    const w = worker;
    clearTimeout(idleExit);
    idleExit = undefined;
    const id = nextId++;
    pending.set(id, { resolve, reject });
    if (pending.size === 1 && workerReady) armWatchdog(w);
    w.ref();
    w.postMessage({ id, text, format } satisfies Job);
  });
}

function serve(): void {
  parentPort!.on("message", (job: Job) => {
    let answer: Answer;
    try {
      answer = { id: job.id, ok: true, manifest: parseManifest(job.text, job.format) };
    } catch (error) {
      const issues = error instanceof ManifestError ? [...error.errors] : undefined;
      answer = { id: job.id, ok: false, issues, message: String(error) };
    }
    parentPort!.postMessage(answer);
  });
  parentPort!.postMessage({ ready: true } satisfies Answer);
}

if (!isMainThread && parentPort !== null && workerData === ROLE) serve();
