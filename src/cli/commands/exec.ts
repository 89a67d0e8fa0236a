/**
 * `skiff exec CONTAINER [-i] [-t] [-e K=V]... [--cwd DIR] [--user UID[:GID]] -- CMD [ARGS...]`:
 * runs a process in a running container (docs/containers.md, "exec").
 *
 * The exit code is the process's: its code, or 128+N when signal N killed it (the shell's
 * convention); `--json` adds one last line on stdout with the exact status. Skiff's own
 * failures keep the CLI's codes (1: the daemon refused, 2: usage), so a caller who must tell
 * them apart from the process's uses `--json`.
 *
 * With `-t` the local terminal goes to raw mode (restored on every way out) and window size
 * changes are forwarded. Without `-t`, SIGINT, SIGTERM and SIGHUP are forwarded to the process.
 */
import { exec, type ExecSession } from "../../client/exec.js";
import { execRequestProblem } from "../../protocol/exec.js";
import type { ExecRequest, ExitStatus } from "../../protocol/messages.js";
import { UsageError, type Command, type CommandContext, type ParsedCommand } from "../command.js";
import { resolveContainer } from "../resolve.js";
import { parseEnvironment } from "./containers.js";
import { withClient } from "./session.js";

const USAGE = "skiff exec CONTAINER [-i] [-t] [-e K=V]... [--cwd DIR] [--user UID[:GID]] -- CMD [ARGS...]";
const FORWARDED_SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;
const SIGNAL_NUMBERS: Record<(typeof FORWARDED_SIGNALS)[number], number> = {
  SIGINT: 2,
  SIGTERM: 15,
  SIGHUP: 1,
};

/** The exec request's fields, as the command line gives them (the container as named there). */
export type ExecArguments = Omit<ExecRequest, "type">;

/** `UID` or `UID:GID`, numbers only (names are not looked up in the container). */
export function parseUser(text: string): { uid: number; gid: number | null } {
  const m = /^(\d{1,10})(?::(\d{1,10}))?$/.exec(text);
  if (!m) throw new UsageError(`--user takes UID[:GID] as numbers, got ${JSON.stringify(text)}`);
  return { uid: Number(m[1]), gid: m[2] === undefined ? null : Number(m[2]) };
}

/** Pure: the command line as an exec request's fields. Throws UsageError. */
export function parseExecArguments(parsed: ParsedCommand): ExecArguments {
  const [container, ...command] = parsed.positionals;
  if (container === undefined) throw new UsageError("exec needs a container");
  if (command.length === 0)
    throw new UsageError("exec needs a command after the container (CONTAINER -- CMD ARGS)");
  const v = parsed.values;
  const env = v.env === undefined ? [] : (Array.isArray(v.env) ? v.env : [v.env]).map(String);
  const user = typeof v.user === "string" ? parseUser(v.user) : { uid: null, gid: null };
  const args: ExecArguments = {
    container,
    command,
    environment: parseEnvironment(env),
    cwd: typeof v.cwd === "string" ? v.cwd : null,
    uid: user.uid,
    gid: user.gid,
    tty: v.tty === true,
    stdin: v.interactive === true,
  };
  const problem = execRequestProblem(args);
  if (problem !== undefined) throw new UsageError(problem);
  return args;
}

/** The shell's exit code for a status: the code, or 128 + the signal. */
export function shellExitCode(status: ExitStatus): number {
  return status.type === "exit" ? status.code : 128 + status.signal;
}

export function statusJson(container: string, pid: number, status: ExitStatus): string {
  const wire =
    status.type === "exit" ? { exit: { code: status.code } } : { signalled: { signal: status.signal } };
  return JSON.stringify({ container, pid, status: wire });
}

async function run(ctx: CommandContext, parsed: ParsedCommand): Promise<number> {
  const args = parseExecArguments(parsed);
  const container = args.container.includes(":")
    ? args.container
    : await withClient(ctx, (client) => resolveContainer(client, args.container));
  const timeoutSeconds = typeof parsed.values.timeout === "string" ? Number(parsed.values.timeout) : 10;
  if (!(timeoutSeconds >= 0)) throw new UsageError("--timeout takes a number of seconds");
  const session = await exec(ctx.global.url, container, args.command, {
    environment: args.environment,
    cwd: args.cwd ?? undefined,
    uid: args.uid ?? undefined,
    gid: args.gid ?? undefined,
    tty: args.tty,
    stdin: args.stdin,
    timeout: Math.round(timeoutSeconds * 1000),
    signal: ctx.signal,
  });
  const restore = attachTerminal(session, args);
  let status: ExitStatus;
  try {
    session.stdout.pipe(process.stdout, { end: false });
    session.stderr.pipe(process.stderr, { end: false });
    status = await session.status;
    await Promise.all([ended(session.stdout), ended(session.stderr)]);
  } finally {
    restore();
  }
  if (ctx.global.json) ctx.out(statusJson(container, session.pid, status));
  return shellExitCode(status);
}

function ended(stream: NodeJS.ReadableStream & { readableEnded?: boolean }): Promise<void> {
  if (stream.readableEnded === true) return Promise.resolve();
  return new Promise((resolve) => stream.once("end", resolve));
}

/** Wires the local terminal and signals to the session; returns the undo. */
function attachTerminal(session: ExecSession, args: ExecArguments): () => void {
  const undo: (() => void)[] = [];
  const stdin = process.stdin;
  if (args.tty && stdin.isTTY) {
    stdin.setRawMode(true);
    undo.push(() => stdin.setRawMode(false));
  }
  if (args.tty && process.stdout.isTTY) {
    // A terminal without a size (0x0, e.g. under `script` without a parent terminal) sends none.
    const resize = (): void => {
      const { rows, columns } = process.stdout;
      if (rows > 0 && columns > 0) session.resize(Math.min(rows, 65535), Math.min(columns, 65535));
    };
    resize();
    process.stdout.on("resize", resize);
    undo.push(() => process.stdout.off("resize", resize));
  }
  if (!args.tty) {
    for (const name of FORWARDED_SIGNALS) {
      const forward = (): void => session.kill(SIGNAL_NUMBERS[name]);
      process.on(name, forward);
      undo.push(() => process.off(name, forward));
    }
  }
  if (args.stdin) {
    const onData = (chunk: Buffer): void => {
      stdin.pause();
      void session.write(chunk).then(() => stdin.resume());
    };
    const onEnd = (): void => session.endStdin();
    stdin.on("data", onData);
    stdin.once("end", onEnd);
    undo.push(() => {
      stdin.off("data", onData);
      stdin.off("end", onEnd);
      stdin.pause();
    });
  }
  return () => {
    for (const u of undo.reverse()) u();
  };
}

export const execCommand: Command = {
  name: "exec",
  summary: "run a command inside a running container",
  usage: USAGE,
  options: {
    interactive: { type: "boolean", short: "i" },
    // -t is the terminal here; the request timeout is only --timeout.
    timeout: { type: "string" },
    tty: { type: "boolean", short: "t" },
    env: { type: "string", short: "e", multiple: true },
    cwd: { type: "string" },
    user: { type: "string" },
  },
  run,
};
