/**
 * Single-instance lock: an exclusive flock(2) on `<state_dir>/skiffd.lock`, which the kernel
 * releases when the holder dies, however it dies. A zombie holds nothing either: a process closes
 * its files before it becomes a zombie, so a restart right after kill -9 starts at once. The file
 * holds the owner's pid, written after the lock is taken, as information for the error message
 * only: nothing decides on it.
 *
 * Node has no flock binding. flock locks belong to the open file description, so skiffd opens
 * the file and hands the descriptor to util-linux's `flock --nonblock --exclusive 3` as the
 * child's fd 3: the child locks the shared description and exits, and the lock stays with
 * skiffd's descriptor until it is closed, explicitly or by the kernel when skiffd dies.
 *
 * INVARIANTS:
 * - The descriptor is opened close-on-exec (as everything libuv opens), so no other child of
 *   skiffd (monitors, runc, mount helpers) inherits it and keeps the lock alive after skiffd.
 * - The file is never unlinked: a lock on an unlinked inode would not exclude a daemon that
 *   opens the path afterwards and gets a new inode.
 */
import { spawn } from "node:child_process";
import { open, readFile, type FileHandle } from "node:fs/promises";
import { join } from "node:path";

export class LockHeldError extends Error {
  override name = "LockHeldError";
}

export interface InstanceLock {
  path: string;
  /** Releases the lock (closes the descriptor); the file stays. */
  release(): Promise<void>;
}

/** util-linux's flock(1). */
const FLOCK = "flock";

/** Takes the lock on `handle`'s open file description; false when another description holds it. */
function flockExclusive(handle: FileHandle): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const child = spawn(FLOCK, ["--nonblock", "--exclusive", "3"], {
      stdio: ["ignore", "ignore", "pipe", handle.fd],
    });
    let stderr = "";
    child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
    child.once("error", (e) => reject(new Error(`cannot run ${FLOCK}: ${e.message}`)));
    child.once("close", (code, signal) => {
      // flock(1) exits 1 when --nonblock finds the lock taken (its --conflict-exit-code default).
      if (code === 0) resolve(true);
      else if (code === 1) resolve(false);
      else reject(new Error(`${FLOCK} failed (${signal ?? `exit ${code}`}): ${stderr.trim()}`));
    });
  });
}

export async function acquireInstanceLock(stateDir: string): Promise<InstanceLock> {
  const path = join(stateDir, "skiffd.lock");
  // "a+": create if missing, never truncate before the lock is ours (the pid is the holder's).
  const handle = await open(path, "a+", 0o600);
  let locked: boolean;
  try {
    locked = await flockExclusive(handle);
  } catch (e) {
    await handle.close();
    throw e;
  }
  if (!locked) {
    await handle.close();
    const holder = (await readFile(path, "utf8").catch(() => "")).trim();
    const who = /^\d+$/.test(holder) ? ` (pid ${holder})` : "";
    throw new LockHeldError(`another skiffd${who} holds ${path}: is it running on the same state_dir?`);
  }
  await handle.truncate(0);
  await handle.write(`${process.pid}\n`, 0);
  let released = false;
  return {
    path,
    release: async () => {
      if (released) return;
      released = true;
      await handle.close();
    },
  };
}
