/**
 * One `skiff-exec` child (native/exec/exec.c documents its descriptors and control lines): it
 * runs `<runtime> exec -d`, reaps the process as its child subreaper and reports the exact wait
 * status. This class turns its control lines into promises.
 *
 * INVARIANTS: `started` settles once (pid, or the runtime's error); `ended` settles once, after
 * the helper has exited and every one of its output streams has ended (Node's `close`), so an
 * `exit` frame written when it resolves follows all of the process's output. Closing the
 * control channel makes the helper kill the runtime (before `started`) or SIGKILL the process
 * (after); the helper exits either way, so no path leaves a process without its supervisor.
 */
import { spawn, type ChildProcess } from "node:child_process";
import type { Readable, Writable, Duplex } from "node:stream";
import type { ExitStatus } from "../../protocol/messages.js";
import { handledElsewhere } from "../../common/errors.js";

/** The runtime refused or failed to start the process; the message is its stderr. */
export class ExecStartError extends Error {
  override name = "ExecStartError";
}

export interface ExecHelperOptions {
  /** skiff-exec's path. */
  helper: string;
  pidFile: string;
  /** tty: the console socket the helper listens on (the runtime sends the pty master there). */
  consoleSocket?: string;
  /** The runtime's argv (absolute path first). */
  runtime: string[];
}

const MAX_CONTROL_LINE = 8192;

export class ExecHelper {
  readonly started: Promise<number>;
  readonly ended: Promise<ExitStatus>;
  readonly stdin: Writable;
  readonly stdout: Readable;
  readonly stderr: Readable;
  private readonly child: ChildProcess;
  private readonly control: Duplex;

  constructor(o: ExecHelperOptions) {
    const args = [
      ...(o.consoleSocket === undefined ? [] : ["--console-socket", o.consoleSocket]),
      "--pid-file",
      o.pidFile,
      "--",
      ...o.runtime,
    ];
    this.child = spawn(o.helper, args, { stdio: ["pipe", "pipe", "pipe", "pipe"] });
    this.stdin = this.child.stdin!;
    this.stdout = this.child.stdout!;
    this.stderr = this.child.stderr!;
    this.control = this.child.stdio[3] as Duplex;
    // A process that does not read its stdin must not fail the stream: EPIPE is expected.
    this.stdin.on("error", () => undefined);
    this.control.on("error", () => undefined);

    let resolveStarted!: (pid: number) => void;
    let rejectStarted!: (e: Error) => void;
    this.started = new Promise((resolve, reject) => {
      resolveStarted = resolve;
      rejectStarted = reject;
    });
    let status: ExitStatus | undefined;
    let failure: string | undefined;
    let pending = "";
    this.control.setEncoding("utf8");
    this.control.on("data", (chunk: string | Buffer) => {
      pending += chunk.toString();
      if (pending.length > MAX_CONTROL_LINE && !pending.includes("\n")) pending = "";
      for (let nl = pending.indexOf("\n"); nl >= 0; nl = pending.indexOf("\n")) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        const [word = "", ...rest] = line.split(" ");
        const value = rest.join(" ");
        switch (word) {
          case "started":
            resolveStarted(Number(value));
            break;
          case "failed":
            failure = value;
            rejectStarted(new ExecStartError(value));
            break;
          case "exited":
            status = { type: "exit", code: Number(value) };
            break;
          case "signalled":
            status = { type: "signalled", signal: Number(value) };
            break;
        }
      }
    });
    this.ended = new Promise((resolve, reject) => {
      this.child.once("error", (e) => {
        rejectStarted(new ExecStartError(`cannot run ${o.helper}: ${e.message}`));
        reject(e);
      });
      this.child.once("close", (code, signal) => {
        const how = signal === null ? `exit code ${code}` : `signal ${signal}`;
        rejectStarted(new ExecStartError(failure ?? `skiff-exec ended (${how}) before the process started`));
        if (status !== undefined) resolve(status);
        else reject(new Error(failure ?? `skiff-exec ended (${how}) without the process's status`));
      });
    });
    // Whoever awaits only one of them must not see the other's rejection as unhandled.
    handledElsewhere(this.started);
    handledElsewhere(this.ended);
  }

  /** Sends `signal` to the process (before it started: ends the runtime). */
  signal(signal: number): void {
    if (!this.control.destroyed) this.control.write(`signal ${signal}\n`);
  }

  resize(rows: number, cols: number): void {
    if (!this.control.destroyed) this.control.write(`resize ${rows} ${cols}\n`);
  }

  /** Ends supervision from this side: the helper SIGKILLs the process (or the runtime) and exits. */
  abandon(): void {
    this.control.end();
  }
}
