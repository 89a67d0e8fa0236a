// The shape every `skiff` command module exports. main.ts collects the commands, parses
// argv with node:util parseArgs using `options`, and calls `run`. Commands print through
// `ctx.out`/`ctx.err` so tests can capture them and so `--json` stays one place.
import { parseArgs, type ParseArgsConfig } from "node:util";

export type OptionSpec = NonNullable<ParseArgsConfig["options"]>;

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

export interface ParsedCommand {
  values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  positionals: string[];
}

/** Exit codes: 0 success, 1 runtime error, 2 usage error. */
export const EXIT_OK = 0;
export const EXIT_RUNTIME_ERROR = 1;
export const EXIT_USAGE = 2;

export class UsageError extends Error {
  override name = "UsageError";
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
  return parseArgs({
    args,
    options: { ...GLOBAL_OPTIONS, ...command.options },
    allowPositionals: true,
    strict: true,
  });
}
