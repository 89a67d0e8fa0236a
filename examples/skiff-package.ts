// Runs the package-file commands (pack, unpack, gen-key, inspect NPK) on their own, so
// examples/build.sh works even before the CLI main registers them. Same arguments as `skiff`.
import { parseArgs } from "node:util";
import { EXIT_USAGE, UsageError } from "../src/cli/command.js";
import { inspectNpkCommand, packageCommands } from "../src/cli/commands/package.js";

async function main(argv: string[]): Promise<number> {
  const json = argv.includes("--json");
  const [name, ...rest] = argv.filter((a) => a !== "--json");
  const command = name === "inspect" ? inspectNpkCommand : packageCommands.find((c) => c.name === name);
  if (command === undefined) {
    process.stderr.write("usage: skiff-package pack|unpack|gen-key|inspect ARGS\n");
    return EXIT_USAGE;
  }
  const abort = new AbortController();
  process.once("SIGINT", () => abort.abort());
  try {
    const parsed = parseArgs({
      args: rest,
      options: command.options ?? {},
      allowPositionals: true,
      strict: true,
    });
    return await command.run(
      {
        global: { url: "", json, timeoutMs: 0 },
        out: (line) => process.stdout.write(`${line}\n`),
        err: (line) => process.stderr.write(`${line}\n`),
        signal: abort.signal,
      },
      parsed,
    );
  } catch (e) {
    if (!(e instanceof UsageError) && !(e as NodeJS.ErrnoException).code?.startsWith("ERR_PARSE_ARGS"))
      throw e;
    process.stderr.write(`skiff ${command.name}: ${(e as Error).message}\nusage: ${command.usage}\n`);
    return EXIT_USAGE;
  }
}

process.exitCode = await main(process.argv.slice(2));
