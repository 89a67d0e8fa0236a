/**
 * Re-adoption after a daemon restart (libvirt's LXC driver does the same with its controllers).
 * Every `<log_dir>/containers/<name>/instance.json` names an instance a previous daemon started.
 * Its monitor tells what became of it:
 * - running: adopted with its original init pid; its later exit is reported normally;
 * - exited while the daemon was down: the exit record is reported, once;
 * - created but never started: discarded without a report;
 * - no monitor and no exit record (the monitor died): reported as an `error` exit, and every
 *   process left in its cgroup is killed.
 */
import { execFile } from "node:child_process";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { connectMonitor, readExitRecord, type MonitorConnection } from "../monitor/client.js";
import type { ExitRecord } from "../monitor/protocol.js";
import { ifExists } from "../../common/errors.js";
import { bestEffortValue, type CleanupLog } from "../errors.js";
import { readInstanceRecord, removeInstanceFiles, type InstanceRecord } from "./instance.js";

export type FoundInstance =
  | { kind: "running"; stateDir: string; record: InstanceRecord; monitor: MonitorConnection; pid: number }
  | { kind: "created"; stateDir: string; record: InstanceRecord; monitor: MonitorConnection }
  | {
      kind: "exited";
      stateDir: string;
      record: InstanceRecord;
      exit: Pick<ExitRecord, "status" | "reason" | "oom"> & Partial<Pick<ExitRecord, "time">>;
      monitor?: MonitorConnection;
    }
  | { kind: "lost"; stateDir: string; record: InstanceRecord };

const CONNECT_TIMEOUT_MS = 2000;
const DELETE_TIMEOUT_MS = 10_000;

/**
 * Removes the OCI runtime's state of a container whose monitor died without a daemon (the
 * monitor runs `delete` after every exit; a lost one never did): without this, every later
 * start of the container fails with "container with given ID already exists". Its processes
 * were killed with its cgroup before.
 */
export async function deleteLostRuntimeState(
  runtime: { path: string; root: string },
  id: string,
): Promise<void> {
  await promisify(execFile)(runtime.path, ["--root", runtime.root, "delete", "--force", id], {
    timeout: DELETE_TIMEOUT_MS,
    killSignal: "SIGKILL",
  });
}

async function inspect(stateDir: string, record: InstanceRecord, log: CleanupLog): Promise<FoundInstance> {
  let monitor: MonitorConnection;
  try {
    monitor = await connectMonitor(stateDir, AbortSignal.timeout(CONNECT_TIMEOUT_MS));
  } catch {
    const exit = await bestEffortValue(log, `${stateDir}: reading the exit record`, readExitRecord(stateDir));
    return exit ? { kind: "exited", stateDir, record, exit } : { kind: "lost", stateDir, record };
  }
  switch (monitor.monitorPhase) {
    case "running":
      return { kind: "running", stateDir, record, monitor, pid: monitor.initPid ?? 0 };
    case "exited": {
      // A connection that ends before EXIT leaves the record on disk: one container's glitch
      // must not fail the daemon's start-up (findInstances would reject).
      const exit =
        monitor.exitRecord ??
        (await monitor
          .exited()
          .catch(() =>
            bestEffortValue(log, `${stateDir}: reading the exit record`, readExitRecord(stateDir)),
          ));
      if (exit) return { kind: "exited", stateDir, record, exit, monitor };
      monitor.close();
      return { kind: "lost", stateDir, record };
    }
    case "creating":
    case "created":
      return { kind: "created", stateDir, record, monitor };
    default: {
      const unknown: never = monitor.monitorPhase;
      throw new Error(`monitor in an unknown phase ${String(unknown)}`);
    }
  }
}

/**
 * Finds the instances a previous daemon left in `dir` (one directory per container), in parallel.
 * A directory without instance.json has no monitor (the record is written before the monitor
 * starts and removed after it has gone): what a daemon that died in the middle of a start or a
 * cleanup left in it is removed.
 */
export async function findInstances(dir: string, log: CleanupLog): Promise<FoundInstance[]> {
  const names = (await ifExists(readdir(dir))) ?? [];
  const found = await Promise.all(
    names.map(async (name) => {
      const stateDir = join(dir, name);
      const record = await readInstanceRecord(stateDir);
      if (record) return inspect(stateDir, record, log);
      await removeInstanceFiles(stateDir);
      return undefined;
    }),
  );
  return found.filter((f): f is FoundInstance => f !== undefined);
}
