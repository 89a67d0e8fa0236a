/** Every `skiff` command, in help order. */
import type { Command } from "./command.js";
import { completionCommand } from "./commands/completion.js";
import { containerCommands } from "./commands/containers.js";
import { daemonCommands } from "./commands/daemon.js";
import { packageCommands } from "./commands/package.js";
import { queryCommands } from "./commands/query.js";
import { repositoryCommands } from "./commands/repository.js";

export const COMMANDS: Command[] = [
  ...queryCommands,
  ...repositoryCommands,
  ...containerCommands,
  ...daemonCommands,
  ...packageCommands,
  completionCommand,
];

export function findCommand(name: string): Command | undefined {
  return COMMANDS.find((c) => c.name === name || c.aliases?.includes(name));
}
