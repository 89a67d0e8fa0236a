/** Every `skiff` command, in help order. */
import type { Command } from "./command.js";
import { checkpointCommands } from "./commands/checkpoint.js";
import { completionCommand } from "./commands/completion.js";
import { helpCommand } from "./help/index.js";
import { containerCommands } from "./commands/containers.js";
import { daemonCommands } from "./commands/daemon.js";
import { execCommand } from "./commands/exec.js";
import { executorCommands } from "./commands/executor.js";
import { packageCommands } from "./commands/package.js";
import { powerCommands } from "./commands/power.js";
import { queryCommands } from "./commands/query.js";
import { repositoryCommands } from "./commands/repository.js";
import { seccompCommand } from "./commands/seccomp.js";
import { statsCommand } from "./commands/stats.js";
import { tokenCommands } from "./commands/token.js";

export const COMMANDS: Command[] = [
  ...queryCommands,
  ...repositoryCommands,
  ...containerCommands,
  execCommand,
  statsCommand,
  ...powerCommands,
  ...executorCommands,
  ...checkpointCommands,
  ...daemonCommands,
  ...tokenCommands,
  ...packageCommands,
  seccompCommand,
  completionCommand,
  helpCommand,
];

export function findCommand(name: string): Command | undefined {
  return COMMANDS.find((c) => c.name === name || c.aliases?.includes(name));
}
