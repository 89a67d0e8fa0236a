/**
 * What the daemon keeps on disk about a running instance, beside the monitor's own state, so a
 * restarted daemon can re-adopt it: `<log_dir>/containers/<name>/instance.json`, written
 * atomically before the monitor starts and removed when the instance has been cleaned up.
 *
 * INVARIANTS:
 * - instance.json is removed first and written last: a directory without it holds nothing a
 *   daemon reports, so a crash in the middle of a cleanup cannot turn a delivered exit into a
 *   second, different one (a stale exit.json is removed before the next instance's record).
 */
import { createHash, randomUUID } from "node:crypto";
import { open, readFile, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import type { ContainerId } from "../../protocol/container.js";
import type { StartedBy, StartOverrides } from "../events/data.js";

export interface InstanceRecord {
  /**
   * The instance's identity, made at create: every exit notification of this instance carries
   * it, also one repeated by a daemon that crashed while delivering it (docs/containers.md).
   */
  instance: string;
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

/** A new instance identity. */
export function newInstanceId(): string {
  return randomUUID();
}

export async function readInstanceRecord(stateDir: string): Promise<InstanceRecord | undefined> {
  let record: Omit<InstanceRecord, "instance"> & { instance?: string };
  try {
    record = JSON.parse(await readFile(join(stateDir, FILE), "utf8")) as typeof record;
  } catch {
    return undefined;
  }
  // A record written before instances had an identity gets one derived from what it holds, so
  // every daemon that reads it reports the same identity.
  const instance =
    record.instance ??
    createHash("sha256").update(`${record.container}\0${record.createdAt}`).digest("hex").slice(0, 32);
  return { ...record, instance };
}

/** Removes what belongs to one instance; the container's logs in the same directory stay. */
export async function removeInstanceFiles(stateDir: string): Promise<void> {
  await rm(join(stateDir, FILE), { force: true });
  await Promise.all(
    [`${FILE}.tmp`, "exit.json", "monitor.sock", "init.pid", "status"].map((f) =>
      rm(join(stateDir, f), { force: true }),
    ),
  );
}
