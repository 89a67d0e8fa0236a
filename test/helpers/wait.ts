/**
 * The one bounded wait of the test suite: every test that waits for something to become true
 * polls it with `waitFor`, which fails with a message naming what it waited for. The bound only
 * matters when the test fails; it must be generous (the VM lane runs under QEMU TCG on a loaded
 * 2-core host, docs/testing.md), and it is never a statement about how fast anything is.
 */
import { setTimeout as sleep } from "node:timers/promises";

export interface WaitOptions {
  /** How long the condition may take before the wait fails. */
  timeoutMs: number;
  /** What is awaited, for the failure message ("the monitor to exit"). */
  what: string;
  /** Pause between two checks (default 20 ms). */
  intervalMs?: number;
  /** More context for the failure message (a daemon log, the last value seen), read on failure. */
  detail?: () => string | Promise<string>;
}

export class WaitTimeoutError extends Error {
  constructor(what: string, timeoutMs: number, detail: string) {
    super(`timed out after ${timeoutMs} ms waiting for ${what}${detail === "" ? "" : `\n${detail}`}`);
    this.name = "WaitTimeoutError";
  }
}

/**
 * Polls `condition` until it returns a value other than `false`, `undefined` or `null`, and
 * returns that value. A condition that throws fails the wait at once (it is a broken check, not
 * a condition not met yet): catch inside the condition what may legitimately fail meanwhile.
 */
export async function waitFor<T>(
  condition: () => T | false | undefined | null | Promise<T | false | undefined | null>,
  opts: WaitOptions,
): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs;
  for (;;) {
    const value = await condition();
    if (value !== false && value !== undefined && value !== null) return value;
    if (Date.now() >= deadline) {
      throw new WaitTimeoutError(opts.what, opts.timeoutMs, opts.detail ? await opts.detail() : "");
    }
    await sleep(Math.max(1, Math.min(opts.intervalMs ?? 20, deadline - Date.now())));
  }
}

/** Resolves with `promise`, or fails naming `what` once `timeoutMs` has passed. */
export async function within<T>(promise: Promise<T>, opts: Omit<WaitOptions, "intervalMs">): Promise<T> {
  const timer = new AbortController();
  try {
    return await Promise.race([
      promise,
      sleep(opts.timeoutMs, undefined, { signal: timer.signal }).then(async () => {
        throw new WaitTimeoutError(opts.what, opts.timeoutMs, opts.detail ? await opts.detail() : "");
      }),
    ]);
  } finally {
    timer.abort();
  }
}
