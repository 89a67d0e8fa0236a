/**
 * Every `skiff` command, in help order, by module. A command's module is imported only when that
 * command runs: `skiff ls` does not load the pack tooling, the OCI image import or the seccomp
 * compiler (docs/footprint.md). So each module's entry lists the words (names and aliases) its
 * commands answer to (words.ts); test/unit/cli/registry.test.ts checks the lists against the modules.
 * In the built `skiff` (dist/cli/), each of these imports is the module's own bundle.
 */
import type { Command } from "./command.js";
import { COMMAND_MODULE_WORDS, type CommandBundle } from "./words.js";

interface CommandModule {
  /** Every name and alias of the module's commands. */
  words: readonly string[];
  load: () => Promise<Command[]>;
}

const LOADERS: Record<CommandBundle, () => Promise<Command[]>> = {
  query: async () => (await import("./commands/query.js")).queryCommands,
  repository: async () => (await import("./commands/repository.js")).repositoryCommands,
  containers: async () => (await import("./commands/containers.js")).containerCommands,
  exec: async () => [(await import("./commands/exec.js")).execCommand],
  stats: async () => [(await import("./commands/stats.js")).statsCommand],
  power: async () => (await import("./commands/power.js")).powerCommands,
  executor: async () => (await import("./commands/executor.js")).executorCommands,
  checkpoint: async () => (await import("./commands/checkpoint.js")).checkpointCommands,
  daemon: async () => (await import("./commands/daemon.js")).daemonCommands,
  token: async () => (await import("./commands/token.js")).tokenCommands,
  package: async () => (await import("./commands/package.js")).packageCommands,
  seccomp: async () => [(await import("./commands/seccomp.js")).seccompCommand],
  completion: async () => [(await import("./commands/completion.js")).completionCommand],
  help: async () => [(await import("./help/index.js")).helpCommand],
};

export const COMMAND_MODULES: readonly CommandModule[] = COMMAND_MODULE_WORDS.map((m) => ({
  words: m.words,
  load: LOADERS[m.bundle],
}));

/** The command called `name` (or aliased so), loading only its module. */
export async function findCommand(name: string): Promise<Command | undefined> {
  const module = COMMAND_MODULES.find((m) => m.words.includes(name));
  const commands = module === undefined ? [] : await module.load();
  return commands.find((c) => c.name === name || c.aliases?.includes(name));
}

/** Every command in help order (loads every module: for help and completion only). */
export async function allCommands(): Promise<Command[]> {
  return (await Promise.all(COMMAND_MODULES.map((m) => m.load()))).flat();
}
