import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { mkdir, readFile } from "node:fs/promises";
import { isAbsolute, join } from "node:path";
import { MonitorConnection } from "./connection.js";
import { nativeBinary } from "./native.js";
import { parseExitRecord, type ExitRecord } from "./protocol.js";

export { MonitorConnection } from "./connection.js";
export { nativeBinary } from "./native.js";

/**
 * Per stream: `discard` drops the output, `pipe` writes it to container.log, `inherit` also sends it to
 * the daemon as `log` events.
 */
export type MonitorIo = "inherit" | "pipe" | "discard";

/** One mode per output stream. */
export interface MonitorStreamsIo {
  stdout: MonitorIo;
  stderr: MonitorIo;
}

export interface MonitorOptions {
  id: string;
  bundleDir: string;
  /** Holds monitor.sock, exit.json, init.pid, container.log*, monitor.log. Created 0700. */
  stateDir: string;
  runtime: string;
  runtimeRoot: string;
  /** What happens to each output stream ({@link MonitorIo}). */
  io: MonitorStreamsIo;
  log: { maxBytes: number; files: number };
  /**
   * The log in CRI's format at this absolute path instead of container.log (a CRI container's
   * log, where the kubelet asked for it; never rotated by the monitor).
   */
  criLogPath?: string;
  /**
   * Passed to the container as fds 4, 5, ... (fd 3 is skiff-init's status pipe). "ignore" leaves the
   * place free for the wrapper to fill (skiff-mksock makes datagram and seq_packet sockets there).
   */
  extraFds?: (number | "ignore")[];
  /** How long an exit nobody received waits for a daemon to reconnect (ms, 0: forever). */
  lingerMs?: number;
  /**
   * Absolute directory of the container's memory cgroup (v1: /sys/fs/cgroup/memory/<cgroupsPath>, v2: the
   * unified directory). The monitor then reports `memory` events and `oom` in the exit record.
   */
  memoryCgroup?: string;
  /** The memory cgroup of the container's process group, whose limit applies to the container too. */
  memoryGroupDir?: string;
  /** Which runtime `runtime` is: the exec fifo's direction differs (default runc). */
  runtimeKind?: "runc" | "crun";
  /**
   * Absolute checkpoint image directory: the monitor runs `runtime restore` from it instead of
   * `create`, and `start()` resolves once the restored container runs. No `extraFds` then.
   */
  restore?: string;
  /** Command prefix the monitor runs under, e.g. valgrind in tests. */
  wrapper?: string[];
  signal?: AbortSignal;
}

/**
 * Starts a detached skiff-monitor (own session: it outlives the daemon),
 * which runs `<runtime> create`, then connects to it. The container stays
 * created until `start()`.
 */
export async function spawnMonitor(opts: MonitorOptions): Promise<MonitorConnection> {
  opts.signal?.throwIfAborted();
  checkMemoryOptions(opts);
  await mkdir(opts.stateDir, { recursive: true, mode: 0o700 });
  const extraFds = opts.extraFds ?? [];
  const args = [
    ...["--id", opts.id, "--bundle", opts.bundleDir, "--state-dir", opts.stateDir],
    ...["--runtime", opts.runtime, "--runtime-root", opts.runtimeRoot],
    ...ioArgs(opts.io),
    ...["--log-max-bytes", String(opts.log.maxBytes), "--log-files", String(opts.log.files)],
    ...(opts.criLogPath === undefined ? [] : ["--log-path", opts.criLogPath, "--log-format", "cri"]),
    ...["--extra-fds", String(extraFds.length), "--ready-fd", "1"],
    ...(opts.lingerMs === undefined ? [] : ["--linger-ms", String(opts.lingerMs)]),
    ...(opts.memoryCgroup === undefined ? [] : ["--memory-cgroup", opts.memoryCgroup]),
    ...(opts.memoryGroupDir === undefined ? [] : ["--memory-group-dir", opts.memoryGroupDir]),
    ...(opts.runtimeKind === undefined ? [] : ["--runtime-kind", opts.runtimeKind]),
    ...(opts.restore === undefined ? [] : ["--restore", opts.restore]),
  ];
  const logFd = openSync(join(opts.stateDir, "monitor.log"), "a", 0o600);
  let child;
  try {
    const [command, ...prefix] = [...(opts.wrapper ?? []), nativeBinary("skiff-monitor")];
    child = spawn(command, [...prefix, ...args], {
      detached: true,
      stdio: ["ignore", "pipe", logFd, ...extraFds],
    });
  } finally {
    closeSync(logFd);
  }
  const monitor = child;
  await new Promise<void>((resolve, reject) => {
    let output = "";
    const fail = (err: Error): void => {
      cleanup();
      reject(err);
    };
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      if (output.includes("ready\n")) {
        cleanup();
        resolve();
      }
    };
    const onExit = (code: number | null, signal: string | null): void =>
      fail(
        new Error(
          `skiff-monitor for ${opts.id} exited before it was ready (code ${code}, signal ${signal}); see ${join(opts.stateDir, "monitor.log")}`,
        ),
      );
    const onError = (err: Error): void => fail(new Error(`cannot start skiff-monitor: ${err.message}`));
    const onAbort = (): void => {
      monitor.kill("SIGTERM");
      fail(opts.signal!.reason as Error);
    };
    const cleanup = (): void => {
      monitor.stdout!.off("data", onData);
      monitor.off("exit", onExit);
      monitor.off("error", onError);
      opts.signal?.removeEventListener("abort", onAbort);
    };
    monitor.stdout!.on("data", onData);
    monitor.once("exit", onExit);
    monitor.once("error", onError);
    opts.signal?.addEventListener("abort", onAbort, { once: true });
  });
  monitor.stdout!.destroy();
  monitor.unref();
  try {
    return await MonitorConnection.open(opts.stateDir, opts.signal);
  } catch (err) {
    // Nobody could reach this monitor any more: it would keep its created container forever.
    await endUnreachableMonitor(monitor);
    throw err;
  }
}

/** How long an unreachable monitor may take to end its container before it is killed. */
const UNREACHABLE_MONITOR_END_MS = 10_000;

/**
 * SIGTERM makes the monitor kill its container and exit (after its `--linger-ms`, as no daemon
 * is connected); SIGKILL if it does not within UNREACHABLE_MONITOR_END_MS.
 */
async function endUnreachableMonitor(monitor: ChildProcess): Promise<void> {
  if (monitor.exitCode !== null || monitor.signalCode !== null) return;
  monitor.on("error", () => undefined); // a failed kill: the wait below settles it either way
  const exited = new Promise<void>((resolve) => monitor.once("exit", () => resolve()));
  monitor.kill("SIGTERM");
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(true), UNREACHABLE_MONITOR_END_MS);
  });
  if (await Promise.race([exited.then(() => false), late])) {
    monitor.kill("SIGKILL");
    await exited;
  }
  clearTimeout(timer);
}

/** The monitor's io flags for MonitorOptions.io. */
export function ioArgs(io: MonitorStreamsIo): string[] {
  return ["--io-stdout", io.stdout, "--io-stderr", io.stderr];
}

function checkMemoryOptions({ memoryCgroup, memoryGroupDir }: MonitorOptions): void {
  for (const [name, dir] of [
    ["memoryCgroup", memoryCgroup],
    ["memoryGroupDir", memoryGroupDir],
  ] as const) {
    if (dir !== undefined && !isAbsolute(dir))
      throw new Error(`MonitorOptions.${name}: "${dir}" is not absolute`);
  }
  if (memoryGroupDir !== undefined && memoryCgroup === undefined) {
    throw new Error("MonitorOptions.memoryGroupDir needs memoryCgroup");
  }
}

/** Re-attaches to a running monitor, e.g. after a daemon restart. */
export function connectMonitor(stateDir: string, signal?: AbortSignal): Promise<MonitorConnection> {
  return MonitorConnection.open(stateDir, signal);
}

/** The exit record a monitor left in stateDir, or undefined if there is none yet. */
export async function readExitRecord(stateDir: string): Promise<ExitRecord | undefined> {
  const path = join(stateDir, "exit.json");
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  return parseExitRecord(JSON.parse(text) as unknown, path);
}
