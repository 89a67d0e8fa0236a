// The shape every `skiff` command module exports. run.ts finds the command, parses argv
// as node:util's parseArgs would (args.ts) using `options`, and calls `run`. Commands print through
// `ctx.out`/`ctx.err` so tests can capture them and so `--json` stays one place.
import { parseArguments, type OptionSpec, type ParsedArguments } from "./args.js";

export type { OptionSpec };

export interface GlobalOptions {
  /** Console URL (`unix://PATH` or `tcp://HOST:PORT`). */
  url: string;
  /** Print raw JSON lines instead of tables. */
  json: boolean;
  /** Request timeout in milliseconds. */
  timeoutMs: number;
}

export interface CommandContext {
  global: GlobalOptions;
  out: (line: string) => void;
  err: (line: string) => void;
  signal: AbortSignal;
}

export type ParsedCommand = ParsedArguments;

/** Exit codes: 0 success, 1 runtime error, 2 usage error. */
export const EXIT_OK = 0;
export const EXIT_RUNTIME_ERROR = 1;
export const EXIT_USAGE = 2;

/** Marks a UsageError: recognised by `isUsageError` in any of the CLI's bundles (see there). */
const USAGE_ERROR: unique symbol = Symbol.for("skiff.cli.UsageError");

export class UsageError extends Error {
  override name = "UsageError";
  readonly [USAGE_ERROR] = true;
}

/**
 * `e instanceof UsageError`, also for a UsageError of another bundle of the built `skiff`
 * (dist/cli/, docs/footprint.md): `skiff inspect FILE` runs package.ts's command from the
 * `package` bundle, whose UsageError is a class of its own, while the `query` bundle reports it.
 */
export function isUsageError(e: unknown): e is UsageError {
  return typeof e === "object" && e !== null && (e as { [USAGE_ERROR]?: unknown })[USAGE_ERROR] === true;
}

export interface Command {
  name: string;
  aliases?: string[];
  summary: string;
  /** One line, e.g. "skiff pack -m MANIFEST -r ROOT [-k KEY] [-o OUT]". */
  usage: string;
  options?: OptionSpec;
  /** Returns the process exit code. Throw UsageError for bad arguments. */
  run(ctx: CommandContext, parsed: ParsedCommand): Promise<number>;
}

/** Options every command accepts (`-u`, `--json`, `-t`, `-h`); a command's own options win. */
export const GLOBAL_OPTIONS: OptionSpec = {
  url: { type: "string", short: "u" },
  json: { type: "boolean" },
  timeout: { type: "string", short: "t" },
  help: { type: "boolean", short: "h" },
};

/** Parses a command's arguments (global options included); throws parseArgs' errors on bad input. */
export function parseCommandArguments(command: Command, args: string[]): ParsedCommand {
  return parseArguments(args, { ...GLOBAL_OPTIONS, ...command.options });
}
