/**
 * Small helpers for failures that every layer (CLI, client, daemon, tools) meets the same way, so
 * that no caller swallows a failure without saying which one it expects:
 * - `messageOf`: the text of anything thrown, where an error becomes text at the edge;
 * - `ifExists`: a file-system lookup whose "there is nothing there" is an answer, not a failure;
 * - `settled`: wait for work to end whatever its outcome, when the outcome is reported elsewhere;
 * - `handledElsewhere`: a promise whose rejection its awaiting owner handles, so Node must not
 *   report it as unhandled before (or if never) awaited;
 * - `undoAfter`: an undo on a failure path, whose own failure is added to the failure thrown.
 */

/** The text of anything thrown (an Error's message, else its string form). */
export function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Errno codes that mean "no such file" for a lookup of a path. */
const ABSENT = new Set(["ENOENT", "ENOTDIR"]);

/** Whether `e` says the path looked up does not exist (ENOENT, or a component is no directory). */
export function isAbsent(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  return code !== undefined && ABSENT.has(code);
}

/**
 * The result of a lookup of a path (stat, lstat, readdir, unlink...), or `undefined` when the
 * path does not exist. Any other failure (EACCES, EIO...) is rethrown.
 */
export async function ifExists<T>(lookup: Promise<T>): Promise<T | undefined> {
  try {
    return await lookup;
  } catch (e) {
    if (isAbsent(e)) return undefined;
    throw e;
  }
}

/**
 * Resolves when `work` has settled, fulfilled or rejected: for a caller that waits for work to
 * end (an instance's start, a monitor's exit) whose outcome its owner reports.
 */
export async function settled(work: Promise<unknown>): Promise<void> {
  await work.then(
    () => undefined,
    () => undefined,
  );
}

/**
 * Marks `promise`'s rejection as handled: its owner awaits it (or races it) and handles the
 * rejection there; without this, a rejection before that await (or a promise of two that is
 * never awaited) would be reported by Node as unhandled.
 */
export function handledElsewhere(promise: Promise<unknown>): void {
  promise.catch(() => undefined);
}

/**
 * Runs `work`, the undo of a half-done operation, while `failure` (what the caller is about to
 * throw) unwinds. A failed undo is not swallowed: its text is added to `failure`'s message, so
 * whoever reports the failure also reports what was left behind.
 */
export async function undoAfter(failure: unknown, what: string, work: Promise<unknown>): Promise<void> {
  try {
    await work;
  } catch (e) {
    if (failure instanceof Error) failure.message += `; and ${what} failed too: ${messageOf(e)}`;
  }
}
