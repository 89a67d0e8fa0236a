/**
 * Single-instance lock: `<state_dir>/skiffd.lock` holds the owner's pid and its start time
 * (field 22 of /proc/<pid>/stat), so a lock left by a dead daemon, or by a pid since reused by
 * another process, is recognised as stale and taken over. Creation is O_EXCL, so two daemons
 * starting at once cannot both win.
 */
import { open, readFile, unlink } from "node:fs/promises";
import { join } from "node:path";

export class LockHeldError extends Error {
  override name = "LockHeldError";
}

async function startTime(pid: number): Promise<string | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may contain spaces; fields after it are split from its ')'.
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

export interface InstanceLock {
  path: string;
  release(): Promise<void>;
}

export async function acquireInstanceLock(stateDir: string): Promise<InstanceLock> {
  const path = join(stateDir, "skiffd.lock");
  const me = `${process.pid} ${await startTime(process.pid)}\n`;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const handle = await open(path, "wx", 0o600);
      await handle.writeFile(me);
      await handle.sync();
      await handle.close();
      return { path, release: () => unlink(path).catch(() => undefined) };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
    const [pidText, started] = (await readFile(path, "utf8").catch(() => "")).trim().split(" ");
    const pid = Number(pidText);
    if (Number.isInteger(pid) && pid > 0 && started !== undefined && (await startTime(pid)) === started) {
      throw new LockHeldError(`another skiffd (pid ${pid}) holds ${path}`);
    }
    await unlink(path).catch(() => undefined);
  }
  throw new LockHeldError(`cannot take ${path}: it keeps reappearing`);
}
