/**
 * The `skiff` command line: `runCli(argv)` finds the command, parses its arguments and runs it.
 * main.ts (unbundled) and bin.ts (the installed program, which loads the bundle of one command
 * module, dist/cli/BUNDLE.js) both call it. Exit codes: 0 success, 1 runtime error (the daemon said
 * no, or could not be reached), 2 usage error.
 */
import { SkiffError } from "../client/errors.js";
import { DEFAULT_CONSOLE_URL } from "../protocol/url.js";
import { PROTOCOL_VERSION } from "../protocol/version.js";
import {
  EXIT_RUNTIME_ERROR,
  EXIT_USAGE,
  UsageError,
  isUsageError,
  parseCommandArguments,
  type Command,
} from "./command.js";
import { allCommands, findCommand } from "./registry.js";
import { commandIndex } from "./words.js";
import { messageOf } from "../common/errors.js";

async function usage(): Promise<string> {
  const commands = await allCommands();
  const width = Math.max(...commands.map((c) => c.name.length)) + 2;
  return [
    "usage: skiff [-u URL] [--json] [-t SECONDS] COMMAND [ARGS]",
    "",
    `  -u, --url URL        console URL (default ${process.env.SKIFF_URL ?? DEFAULT_CONSOLE_URL}; env SKIFF_URL)`,
    "      --json           print raw JSON lines",
    "  -V, --version        print Skiff's version and the console protocol version",
    "  -t, --timeout SECS   request timeout (default 10)",
    "",
    "commands:",
    ...commands.map(
      (c) => `  ${c.name.padEnd(width)}${c.summary}${c.aliases ? ` (alias: ${c.aliases.join(", ")})` : ""}`,
    ),
  ].join("\n");
}

export async function runCli(
  argv: string[],
  io: { out: (l: string) => void; err: (l: string) => void } = {
    out: (l) => process.stdout.write(`${l}\n`),
    err: (l) => process.stderr.write(`${l}\n`),
  },
): Promise<number> {
  const at = commandIndex(argv);
  const name = at >= 0 ? argv[at]! : undefined;
  const command: Command | undefined = name === undefined ? undefined : await findCommand(name);
  if (!command) {
    // Only before a command word: `skiff pack --version X` is the package's version.
    if (name === undefined && (argv.includes("-V") || argv.includes("--version"))) {
      // Read from package.json only when asked (not on every command's start).
      const { SKIFF_VERSION } = await import("../common/version.js");
      io.out(`skiff ${SKIFF_VERSION} (console protocol ${PROTOCOL_VERSION})`);
      return 0;
    }
    if (name === undefined && (argv.includes("-h") || argv.includes("--help"))) {
      io.out(await usage());
      return 0;
    }
    io.err(
      name === undefined
        ? await usage()
        : `skiff: unknown command ${JSON.stringify(name)}\n\n${await usage()}`,
    );
    return EXIT_USAGE;
  }
  const abort = new AbortController();
  try {
    const parsed = parseCommandArguments(command, [...argv.slice(0, at), ...argv.slice(at + 1)]);
    if (parsed.values.help) {
      // The manual page, as `skiff help COMMAND` prints it (cli/help/).
      const { helpText } = await import("./help/index.js");
      io.out(await helpText(command));
      return 0;
    }
    // A command with its own --timeout (e.g. a wake lock's duration) keeps the default deadline.
    const timeoutText = command.options?.timeout ? undefined : (parsed.values.timeout as string | undefined);
    const timeoutSeconds = timeoutText === undefined ? 10 : Number(timeoutText);
    if (!(timeoutSeconds >= 0)) throw new UsageError("--timeout takes a number of seconds");
    const ctx = {
      global: {
        url: (parsed.values.url as string | undefined) ?? process.env.SKIFF_URL ?? DEFAULT_CONSOLE_URL,
        json: parsed.values.json === true,
        timeoutMs: Math.round(timeoutSeconds * 1000),
      },
      out: io.out,
      err: io.err,
      signal: abort.signal,
    };
    return await command.run(ctx, parsed);
  } catch (e) {
    if (isUsageError(e) || (e as NodeJS.ErrnoException).code?.startsWith("ERR_PARSE_ARGS")) {
      io.err(`skiff ${command.name}: ${messageOf(e)}\nusage: ${command.usage}`);
      return EXIT_USAGE;
    }
    if (e instanceof SkiffError) {
      io.err(`skiff ${command.name}: ${e.message}`);
      return EXIT_RUNTIME_ERROR;
    }
    throw e;
  }
}

/** Runs `skiff` on the process's arguments and sets its exit code (main.ts and bin.ts). */
export function runProgram(): void {
  runCli(process.argv.slice(2)).then(
    (code) => (process.exitCode = code),
    (e: unknown) => {
      process.stderr.write(`skiff: ${(e as Error).stack ?? String(e)}\n`);
      process.exitCode = EXIT_RUNTIME_ERROR;
    },
  );
}
