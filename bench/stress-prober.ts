/**
 * The well-behaved client of `npm run stress`: a worker thread (its own event loop, so the
 * harness's own work does not inflate the figure) that sends `list` every `intervalMs` on one
 * connection and posts the round trips in batches. Requests that fail (the daemon was killed)
 * are counted, not timed; it reconnects until told to stop.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { parentPort, workerData } from "node:worker_threads";
import { connect, type Client } from "../src/client/index.js";

export interface ProberConfig {
  url: string;
  intervalMs: number;
}

/** Posted every ~500 ms: round trips in ms, and failed requests since the last batch. */
export interface ProberBatch {
  samples: number[];
  failures: number;
}

const BATCH_MS = 500;

async function main(): Promise<void> {
  const { url, intervalMs } = workerData as ProberConfig;
  let stopped = false;
  parentPort!.on("message", () => (stopped = true));
  let samples: number[] = [];
  let failures = 0;
  const flush = setInterval(() => {
    parentPort!.postMessage({ samples, failures } satisfies ProberBatch);
    samples = [];
    failures = 0;
  }, BATCH_MS);
  let client: Client | undefined;
  while (!stopped) {
    const tick = performance.now();
    try {
      client ??= await connect(url, { timeout: 30_000 });
      await client.list();
      samples.push(performance.now() - tick);
    } catch {
      failures++;
      client?.close();
      client = undefined;
    }
    await sleep(Math.max(0, intervalMs - (performance.now() - tick)));
  }
  client?.close();
  clearInterval(flush);
  parentPort!.postMessage({ samples, failures } satisfies ProberBatch);
  parentPort!.close();
}

void main();
