/**
 * What the daemon keeps on disk about a running instance, beside the monitor's own state, so a
 * restarted daemon can re-adopt it: `<log_dir>/containers/<name>/instance.json`, written
 * atomically before the monitor starts and removed when the instance has been cleaned up.
 */
import { open, readFile, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import type { ContainerId } from "../../protocol/container.js";
import type { StartedBy, StartOverrides } from "../state/model.js";

export interface InstanceRecord {
  container: ContainerId;
  startedBy: StartedBy;
  overrides: StartOverrides;
  resources: ContainerId[];
  /** Absolute cgroup path of the instance. */
  cgroupPath: string;
  /** Epoch ms the start was requested (init's own start time comes from the monitor). */
  createdAt: number;
  /** Created by `prepare`: kept waiting for its start across a daemon restart. */
  prepared?: boolean;
}

const FILE = "instance.json";

export async function writeInstanceRecord(stateDir: string, record: InstanceRecord): Promise<void> {
  const tmp = join(stateDir, `${FILE}.tmp`);
  const handle = await open(tmp, "w", 0o600);
  try {
    await handle.writeFile(JSON.stringify(record));
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(tmp, join(stateDir, FILE));
}

export async function readInstanceRecord(stateDir: string): Promise<InstanceRecord | undefined> {
  try {
    return JSON.parse(await readFile(join(stateDir, FILE), "utf8")) as InstanceRecord;
  } catch {
    return undefined;
  }
}

/** Removes what belongs to one instance; the container's logs in the same directory stay. */
export async function removeInstanceFiles(stateDir: string): Promise<void> {
  await Promise.all(
    [FILE, "exit.json", "monitor.sock", "init.pid", "status"].map((f) =>
      rm(join(stateDir, f), { force: true }),
    ),
  );
}
