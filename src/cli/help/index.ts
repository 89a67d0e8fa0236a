/**
 * `skiff help [COMMAND]` and the text of `skiff COMMAND --help`: both print `helpText(command)`,
 * the command's manual page (render.ts, pages.ts). The pages are loaded only when asked for.
 */
import { EXIT_OK, EXIT_USAGE, type Command } from "../command.js";
import { renderHelp } from "./render.js";

/** The manual page of `command`. A command without a page (a test forbids it) gets its usage. */
export async function helpText(command: Command): Promise<string> {
  const { HELP_PAGES } = await import("./pages.js");
  const page = HELP_PAGES[command.name] ?? {
    description: [command.summary],
    examples: [[command.usage.split("\n")[0]!, command.summary]],
  };
  return renderHelp(command, page);
}

export const helpCommand: Command = {
  name: "help",
  summary: "Show the manual page of a command (as COMMAND --help does)",
  usage: "skiff help [COMMAND]",
  async run(ctx, { positionals }) {
    // Imported lazily: the registry imports this module.
    const { allCommands, findCommand } = await import("../registry.js");
    if (positionals.length === 0) {
      const commands = await allCommands();
      const width = Math.max(...commands.map((c) => c.name.length)) + 2;
      ctx.out("usage: skiff help COMMAND\n\ncommands:");
      for (const c of commands) ctx.out(`  ${c.name.padEnd(width)}${c.summary}`);
      return EXIT_OK;
    }
    const command = positionals.length === 1 ? await findCommand(positionals[0]!) : undefined;
    if (!command) {
      ctx.err(
        positionals.length === 1
          ? `skiff help: unknown command ${JSON.stringify(positionals[0])} (skiff help lists them)`
          : "skiff help: takes one command",
      );
      return EXIT_USAGE;
    }
    ctx.out(await helpText(command));
    return EXIT_OK;
  },
};
