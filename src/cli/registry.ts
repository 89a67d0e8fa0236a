/** Every `skiff` command, in help order. */
import type { Command } from "./command.js";
import { completionCommand } from "./commands/completion.js";
import { daemonCommands } from "./commands/daemon.js";
import { queryCommands } from "./commands/query.js";

export const COMMANDS: Command[] = [...queryCommands, ...daemonCommands, completionCommand];

export function findCommand(name: string): Command | undefined {
  return COMMANDS.find((c) => c.name === name || c.aliases?.includes(name));
}
