// skiffd's side of skiff-launcher (native/launcher/launcher.c, whose header documents the wire
// format): one small resident process that posix_spawn()s each skiff-monitor, so the start path
// no longer forks the whole daemon (Node's child_process.spawn, ~3 ms a start).
//
// A launcher that dies is loud and replaced: the loss is logged as an error (`onLost`), the
// requests it had not answered fail (it may have started a monitor for them before it died: a
// retry could start a second one for the same container), and the next launch starts a new
// launcher. A launcher that cannot be started (`LauncherUnavailableError`) makes the caller use
// Node's spawn for that monitor. Monitors it spawned keep running without it: they are in their
// own sessions, and are reparented to init, which reaps them.
import { spawn, type ChildProcess } from "node:child_process";
import { readFile } from "node:fs/promises";
import type { Socket } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { getSystemErrorName } from "node:util";
import { constants as osConstants } from "node:os";
import { nativeBinary } from "./native.js";

/** The launcher could not be started: nothing was sent to it. */
export class LauncherUnavailableError extends Error {}

/** One process the launcher started. */
export interface LaunchedProcess {
  readonly pid: number;
  /** Resolves when it wrote "ready\n" on its fd 1; rejects if it exited (or the launcher died) first. */
  readonly ready: Promise<void>;
  /** Resolves once it has exited. */
  readonly exited: Promise<void>;
  /** No more interest in its ready line or its exit (the daemon follows it by other means). */
  release(): void;
}

interface Tracked {
  id: number;
  pid: number;
  readySettled: boolean;
  resolveReady(): void;
  rejectReady(err: Error): void;
  resolveExited(): void;
}

/** How a tool run by the launcher ended. */
export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** The request's mode field (native/launcher/launcher.c). */
enum Mode {
  Monitor = 0,
  Run = 1,
}

function request(
  id: number,
  mode: Mode,
  argv: string[],
  fds: readonly (number | "ignore")[],
  logPath: string,
): Buffer {
  const strings = Buffer.concat([...argv, logPath].map((s) => Buffer.from(s + "\0")));
  const head = Buffer.alloc(20 + 4 * fds.length);
  head.writeUInt32LE(head.length - 4 + strings.length, 0);
  head.writeUInt32LE(id, 4);
  head.writeUInt32LE(mode, 8);
  head.writeUInt32LE(argv.length, 12);
  head.writeUInt32LE(fds.length, 16);
  fds.forEach((fd, i) => head.writeInt32LE(fd === "ignore" ? -1 : fd, 20 + 4 * i));
  return Buffer.concat([head, strings]);
}

interface Run {
  resolve(r: RunResult): void;
  reject(err: Error): void;
}

/** A request written to the launcher; `spawned` is called as its reply is read. */
interface Request {
  spawned(pid: number): void;
  reject(err: Error): void;
}

/** How often a process is looked for once its launcher died (it is then init's child). */
const ORPHAN_POLL_MS = 50;
/** "ran" carries two 4 KiB outputs in hex. */
const MAX_REPLY_LINE = 17_000;

// INVARIANTS: `requests` holds exactly the requests written to the current launcher and not yet
// answered; `tracked` the processes it spawned that a caller still follows, by pid and by request
// id. Replies are handled in order: "spawned ID" adds to `tracked` before "ready ID" or
// "exit PID" of the same process is read. When the launcher is lost, both are emptied at once.
export class MonitorLauncher {
  private child: ChildProcess | undefined;
  private up: Promise<ChildProcess> | undefined;
  private nextId = 1;
  private readonly requests = new Map<number, Request>();
  private readonly runs = new Map<number, Run>();
  private readonly trackedById = new Map<number, Tracked>();
  private readonly trackedByPid = new Map<number, Tracked>();
  private closing = false;

  constructor(private readonly onLost: (reason: string) => void) {}

  /** The launcher's pid, once one runs. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /**
   * Starts `argv` as a monitor: fd 0 /dev/null, fd 1 the ready pipe, fd 2 `logPath` (append),
   * `fds` (the daemon's descriptors, open until this resolves) at 3, 4, ...
   */
  async launch(
    argv: string[],
    fds: readonly (number | "ignore")[],
    logPath: string,
  ): Promise<LaunchedProcess> {
    const child = await this.start();
    const id = this.nextId++;
    return new Promise<LaunchedProcess>((resolve, reject) => {
      // Tracked as the reply is read: its "ready" may follow in the same chunk.
      this.requests.set(id, { spawned: (pid) => resolve(this.track(id, pid)), reject });
      this.updateRef();
      child.stdin!.write(request(id, Mode.Monitor, argv, fds, logPath));
    });
  }

  /**
   * Runs a short-lived tool (fd 0 /dev/null) to its end; resolves with its exit and the first
   * 4 KiB of its stdout and stderr. An abort SIGKILLs it and rejects with the signal's reason.
   */
  async run(argv: string[], signal?: AbortSignal): Promise<RunResult> {
    signal?.throwIfAborted();
    const child = await this.start();
    const id = this.nextId++;
    const ran = new Promise<RunResult>((resolve, reject) => this.runs.set(id, { resolve, reject }));
    ran.catch(() => undefined); // a failure before the tool ran is thrown by `spawned`
    const spawned = new Promise<number>((resolve, reject) => {
      this.requests.set(id, { spawned: resolve, reject });
      this.updateRef();
      child.stdin!.write(request(id, Mode.Run, argv, [], ""));
    });
    spawned.catch(() => {
      this.runs.delete(id);
      this.updateRef();
    });
    const pid = await spawned;
    const onAbort = (): void => {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // Already reaped: its result is on its way.
      }
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    if (signal?.aborted === true) onAbort(); // aborted while the request was in flight
    try {
      const result = await ran;
      signal?.throwIfAborted();
      return result;
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
  }

  /** Referenced while a request is unanswered or a process is followed, else unreferenced. */
  private updateRef(): void {
    const stdout = this.child?.stdout as Socket | undefined;
    if (this.requests.size + this.runs.size + this.trackedByPid.size > 0) stdout?.ref();
    else stdout?.unref();
  }

  /** Ends the launcher (an orderly shutdown); the monitors it started keep running. */
  close(): void {
    this.closing = true;
    this.child?.stdin?.end();
  }

  private start(): Promise<ChildProcess> {
    if (this.closing) return Promise.reject(new LauncherUnavailableError("the daemon is shutting down"));
    this.up ??= new Promise<ChildProcess>((resolve, reject) => {
      const child = spawn(nativeBinary("skiff-launcher"), [String(process.pid)], {
        stdio: ["pipe", "pipe", "inherit"],
        detached: true,
      });
      this.child = child;
      let started = false;
      let pending = "";
      child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
        pending += chunk;
        for (let nl = pending.indexOf("\n"); nl >= 0; nl = pending.indexOf("\n")) {
          const line = pending.slice(0, nl);
          pending = pending.slice(nl + 1);
          if (!started && line.startsWith("up ")) {
            started = true;
            resolve(child);
          } else {
            this.onReply(line);
          }
        }
        if (pending.length > MAX_REPLY_LINE) child.kill("SIGKILL");
      });
      const lost = (reason: string): void => {
        if (this.child !== child) return;
        this.child = undefined;
        this.up = undefined;
        if (!started) {
          reject(new LauncherUnavailableError(`skiff-launcher did not start: ${reason}`));
          return;
        }
        if (!this.closing) this.onLost(`skiff-launcher (pid ${child.pid}) ${reason}`);
        this.dropAll(`skiff-launcher ${reason}`);
      };
      child.on("error", (e) => lost(`failed: ${e.message}`));
      child.on("exit", (code, signal) =>
        lost(signal === null ? `exited with code ${code}` : `was killed by ${signal}`),
      );
      child.stdin.on("error", () => undefined); // the exit above reports a dead launcher
      // The launcher keeps the daemon's process alive only while it owes an answer (updateRef);
      // it ends at EOF when the daemon does.
      child.unref();
      (child.stdin as Socket).unref();
    });
    return this.up;
  }

  private onReply(line: string): void {
    this.handleReply(line);
    this.updateRef();
  }

  private handleReply(line: string): void {
    const [kind, a, b, c] = line.split(" ");
    const n = Number(a);
    switch (kind ?? "") {
      case "spawned": {
        const request = this.requests.get(n);
        if (!request) return;
        this.requests.delete(n);
        request.spawned(Number(b));
        return;
      }
      case "failed": {
        const request = this.requests.get(n);
        if (!request) return;
        this.requests.delete(n);
        const code = errnoName(Number(b));
        request.reject(Object.assign(new Error(`skiff-launcher could not start it: ${code}`), { code }));
        return;
      }
      case "ran": {
        const run = this.runs.get(n);
        if (!run) return;
        this.runs.delete(n);
        const [, , , , out, err] = line.split(" ");
        run.resolve({
          code: b === "-1" ? null : Number(b),
          signal: b === "-1" ? (signalName(Number(c)) ?? null) : null,
          stdout: fromHex(out),
          stderr: fromHex(err),
        });
        return;
      }
      case "ready": {
        const t = this.trackedById.get(n);
        if (!t) return;
        t.readySettled = true;
        t.resolveReady();
        return;
      }
      case "exit": {
        const t = this.trackedByPid.get(n);
        if (!t) return;
        if (!t.readySettled) {
          t.readySettled = true;
          t.rejectReady(new Error(`exited before it was ready (code ${b === "-1" ? null : b}, signal ${c})`));
        }
        t.resolveExited();
        this.untrack(t);
        return;
      }
      default:
        return;
    }
  }

  private track(id: number, pid: number): LaunchedProcess {
    let resolveReady!: () => void, rejectReady!: (e: Error) => void, resolveExited!: () => void;
    const ready = new Promise<void>((res, rej) => {
      resolveReady = res;
      rejectReady = rej;
    });
    ready.catch(() => undefined); // a caller that stopped waiting does not make it unhandled
    const exited = new Promise<void>((res) => (resolveExited = res));
    const t: Tracked = { id, pid, readySettled: false, resolveReady, rejectReady, resolveExited };
    this.trackedById.set(id, t);
    this.trackedByPid.set(pid, t);
    const untrackById = (): void => {
      this.trackedById.delete(id);
    };
    ready.then(untrackById, untrackById);
    return {
      pid,
      ready,
      exited,
      release: () => {
        this.untrack(t);
        this.updateRef();
      },
    };
  }

  private untrack(t: Tracked): void {
    this.trackedByPid.delete(t.pid);
    this.trackedById.delete(t.id);
  }

  private dropAll(reason: string): void {
    for (const request of this.requests.values()) request.reject(new Error(reason));
    this.requests.clear();
    for (const run of this.runs.values()) run.reject(new Error(reason));
    this.runs.clear();
    for (const t of new Set([...this.trackedById.values(), ...this.trackedByPid.values()])) {
      if (!t.readySettled) {
        t.readySettled = true;
        t.rejectReady(new Error(reason));
      }
      void whenGone(t.pid).then(() => t.resolveExited());
    }
    this.trackedById.clear();
    this.trackedByPid.clear();
  }
}

const fromHex = (text: string | undefined): string =>
  text === undefined || text === "-" ? "" : Buffer.from(text, "hex").toString("utf8");

function signalName(n: number): NodeJS.Signals | undefined {
  return (Object.entries(osConstants.signals) as [NodeJS.Signals, number][]).find(([, v]) => v === n)?.[0];
}

function errnoName(errno: number): string {
  try {
    return getSystemErrorName(-errno);
  } catch {
    return `errno ${errno}`;
  }
}

/** Resolves once `pid` no longer runs (gone, or a zombie left for its new parent to reap). */
async function whenGone(pid: number): Promise<void> {
  for (;;) {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => undefined);
    // The state follows the command name's closing parenthesis.
    if (stat === undefined || stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z")) return;
    await sleep(ORPHAN_POLL_MS);
  }
}
