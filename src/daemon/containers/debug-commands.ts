/**
 * `[debug] commands` (Northstar's strace/perf hooks): at every container start, each configured
 * command line runs with `<PID>` replaced by the container's init pid (on the host) and
 * `<CONTAINER>` by its id. As in Northstar 0.9.2 they run between the runtime's create and the
 * start, when the pid exists and the application has not run yet (the container executor calls
 * `start` there, and waits until every command has been spawned before it starts the container;
 * a restored container, which has no such moment, gets them once restored). The line is split at
 * whitespace (no shell), its stdout and stderr go line by line to the daemon's log under the
 * container, its exit is logged, and it is NOT ended when the container stops (strace and perf
 * end by themselves when the traced process goes away). Unlike Northstar, a command that cannot
 * be spawned is logged and the start goes on, and commands still running when skiffd shuts down
 * get SIGTERM, so the daemon leaves no orphans behind.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import type { Readable } from "node:stream";
import type { Logger } from "pino";
import type { ContainerId } from "../../protocol/container.js";

/** A logged output line is cut here: a tracer's output must not grow one log record without bound. */
const MAX_LOGGED_LINE = 4096;

/** The argv of one command line for this container and pid. Pure. */
export function debugCommandArgv(command: string, container: ContainerId, pid: number): string[] {
  return command
    .replaceAll("<PID>", String(pid))
    .replaceAll("<CONTAINER>", container)
    .split(/\s+/)
    .filter((word) => word.length > 0);
}

export class DebugCommands {
  private readonly running = new Set<ChildProcess>();

  constructor(
    private readonly commands: readonly string[],
    private readonly log: Logger,
  ) {}

  /** Whether any command is configured (the executor then waits for the init pid before the start). */
  get configured(): boolean {
    return this.commands.length > 0;
  }

  /**
   * Spawns every configured command for a container whose init has this pid; resolves once each
   * has been spawned (or failed to). Never rejects.
   */
  async start(container: ContainerId, pid: number): Promise<void> {
    const spawned: Promise<void>[] = [];
    for (const command of this.commands) {
      const [file, ...args] = debugCommandArgv(command, container, pid);
      if (file === undefined) continue;
      const line = [file, ...args].join(" ");
      const log = this.log.child({ container, debugCommand: line });
      log.info(`spawning debug command: ${line}`);
      const child = spawn(file, args, { stdio: ["ignore", "pipe", "pipe"] });
      this.running.add(child);
      spawned.push(
        new Promise<void>((resolve) => {
          child.once("spawn", resolve);
          child.once("error", () => resolve());
        }),
      );
      forwardLines(child.stdout, log);
      forwardLines(child.stderr, log);
      child.once("error", (e) => {
        this.running.delete(child);
        log.error(`debug command failed: ${e.message}`);
      });
      child.once("exit", (code, signal) => {
        this.running.delete(child);
        log.info(`debug command exited with ${signal ?? `code ${code}`}`);
      });
    }
    await Promise.all(spawned);
  }

  /** Daemon shutdown: SIGTERM to every command still running (we started them, by pid). */
  stopAll(): void {
    for (const child of this.running) child.kill("SIGTERM");
  }
}

function forwardLines(stream: Readable, log: Logger): void {
  const lines = createInterface({ input: stream, crlfDelay: Infinity });
  lines.on("line", (line) =>
    log.info(line.length > MAX_LOGGED_LINE ? `${line.slice(0, MAX_LOGGED_LINE)}…` : line),
  );
}
