import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { mkdir, readFile } from "node:fs/promises";
import { isAbsolute, join } from "node:path";
import { messageOf } from "../../common/errors.js";
import { MonitorConnection } from "./connection.js";
import { LauncherUnavailableError, type MonitorLauncher } from "./launcher.js";
import { nativeBinary } from "./native.js";
import { parseExitRecord, type ExitRecord } from "./protocol.js";

export { MonitorConnection } from "./connection.js";
export { MonitorLauncher } from "./launcher.js";
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
  /**
   * Starts the monitor without forking the daemon (./launcher.ts); without it, Node's spawn.
   */
  launcher?: MonitorLauncher;
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
  const logPath = join(opts.stateDir, "monitor.log");
  const argv = [...(opts.wrapper ?? []), nativeBinary("skiff-monitor"), ...args];
  const monitor = await startProcess(opts.launcher, argv, extraFds, logPath);
  await new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      monitor.kill("SIGTERM");
      reject(opts.signal!.reason as Error);
    };
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    monitor.ready.then(
      () => {
        opts.signal?.removeEventListener("abort", onAbort);
        resolve();
      },
      (e: Error) => {
        opts.signal?.removeEventListener("abort", onAbort);
        reject(new Error(`skiff-monitor for ${opts.id} ${e.message}; see ${logPath}`));
      },
    );
  }).catch(async (e: unknown) => {
    // A launcher that died before the ready line leaves a monitor nobody will connect to.
    // (An already-resolved `false` would always win the race: `exited.then` settles a tick later.)
    const exited = await Promise.race([
      monitor.exited.then(() => true),
      new Promise<boolean>((resolve) => setImmediate(() => resolve(false))),
    ]);
    if (!exited && opts.signal?.aborted !== true) await endUnreachableMonitor(monitor);
    monitor.release();
    throw e;
  });
  try {
    return await MonitorConnection.open(opts.stateDir, opts.signal);
  } catch (err) {
    // Nobody could reach this monitor any more: it would keep its created container forever.
    await endUnreachableMonitor(monitor);
    throw err;
  } finally {
    monitor.release();
  }
}

/** A skiff-monitor process until the daemon is connected to it. */
interface MonitorProcess {
  /** Resolves at its "ready\n"; rejects with what happened instead ("exited before ..."). */
  readonly ready: Promise<void>;
  /** Resolves once it has exited. */
  readonly exited: Promise<void>;
  kill(signal: NodeJS.Signals): void;
  /** The connection (or its failure) ends the daemon's interest in the process itself. */
  release(): void;
}

/**
 * Through the launcher when there is one, else (no launcher, or it cannot be started: it
 * logged why) with Node's spawn, which forks the daemon. Both give the monitor the same
 * session, fds, environment and cgroup.
 */
async function startProcess(
  launcher: MonitorLauncher | undefined,
  argv: string[],
  extraFds: (number | "ignore")[],
  logPath: string,
): Promise<MonitorProcess> {
  if (launcher) {
    try {
      const launched = await launcher.launch(argv, extraFds, logPath);
      return {
        ready: launched.ready,
        exited: launched.exited,
        kill: (signal) => signalPid(launched.pid, signal),
        release: () => launched.release(),
      };
    } catch (e) {
      if (!(e instanceof LauncherUnavailableError))
        throw new Error(`cannot start skiff-monitor: ${messageOf(e)}`);
    }
  }
  return spawnedByNode(argv, extraFds, logPath);
}

function spawnedByNode(argv: string[], extraFds: (number | "ignore")[], logPath: string): MonitorProcess {
  const logFd = openSync(logPath, "a", 0o600);
  let child: ChildProcess;
  try {
    child = spawn(argv[0]!, argv.slice(1), {
      detached: true,
      stdio: ["ignore", "pipe", logFd, ...extraFds],
    });
  } finally {
    closeSync(logFd);
  }
  const exited = new Promise<void>((resolve) => {
    child.once("exit", () => resolve());
    // Reported through `ready`; a process that never started has no exit to wait for, and a
    // failed kill changes nothing.
    child.on("error", () => {
      if (child.pid === undefined) resolve();
    });
  });
  const ready = new Promise<void>((resolve, reject) => {
    let output = "";
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      if (output.includes("ready\n")) {
        cleanup();
        resolve();
      }
    };
    const onExit = (code: number | null, signal: string | null): void => {
      cleanup();
      reject(new Error(`exited before it was ready (code ${code}, signal ${signal})`));
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(new Error(`could not be started: ${err.message}`));
    };
    const cleanup = (): void => {
      child.stdout!.off("data", onData);
      child.off("exit", onExit);
      child.off("error", onError);
      child.stdout!.destroy();
    };
    child.stdout!.on("data", onData);
    child.once("exit", onExit);
    child.once("error", onError);
  });
  return {
    ready,
    exited,
    kill: (signal) => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
    release: () => child.unref(),
  };
}

function signalPid(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // Already gone: `exited` settles (or has settled) for it.
  }
}

/** How long an unreachable monitor may take to end its container before it is killed. */
const UNREACHABLE_MONITOR_END_MS = 10_000;

/**
 * SIGTERM makes the monitor kill its container and exit (after its `--linger-ms`, as no daemon
 * is connected); SIGKILL if it does not within UNREACHABLE_MONITOR_END_MS.
 */
async function endUnreachableMonitor(monitor: MonitorProcess): Promise<void> {
  monitor.kill("SIGTERM");
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(true), UNREACHABLE_MONITOR_END_MS);
  });
  if (await Promise.race([monitor.exited.then(() => false), late])) {
    monitor.kill("SIGKILL");
    await monitor.exited;
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
