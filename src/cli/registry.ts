/**
 * Every `skiff` command, in help order, by module. A command's module is imported only when that
 * command runs: `skiff ls` does not load the pack tooling, the OCI image import or the seccomp
 * compiler (docs/footprint.md). So each module's entry lists the words (names and aliases) its
 * commands answer to; test/unit/cli/registry.test.ts checks the lists against the modules.
 */
import type { Command } from "./command.js";

interface CommandModule {
  /** Every name and alias of the module's commands. */
  words: readonly string[];
  load: () => Promise<Command[]>;
}

export const COMMAND_MODULES: readonly CommandModule[] = [
  {
    words: ["list", "ls", "inspect", "repositories", "repos", "ident"],
    load: async () => (await import("./commands/query.js")).queryCommands,
  },
  {
    words: ["install", "uninstall", "mount", "umount"],
    load: async () => (await import("./commands/repository.js")).repositoryCommands,
  },
  {
    words: ["start", "stop", "kill", "logs", "ps"],
    load: async () => (await import("./commands/containers.js")).containerCommands,
  },
  { words: ["exec"], load: async () => [(await import("./commands/exec.js")).execCommand] },
  { words: ["stats"], load: async () => [(await import("./commands/stats.js")).statsCommand] },
  {
    words: ["pause", "resume", "suspend", "wakelock", "wakesource", "proxy", "power"],
    load: async () => (await import("./commands/power.js")).powerCommands,
  },
  {
    words: ["prepare", "health"],
    load: async () => (await import("./commands/executor.js")).executorCommands,
  },
  {
    words: ["checkpoint", "restore"],
    load: async () => (await import("./commands/checkpoint.js")).checkpointCommands,
  },
  {
    words: ["shutdown", "notifications", "events"],
    load: async () => (await import("./commands/daemon.js")).daemonCommands,
  },
  {
    words: ["token", "verify-token"],
    load: async () => (await import("./commands/token.js")).tokenCommands,
  },
  {
    words: ["pack", "unpack", "gen-key"],
    load: async () => (await import("./commands/package.js")).packageCommands,
  },
  { words: ["seccomp"], load: async () => [(await import("./commands/seccomp.js")).seccompCommand] },
  { words: ["completion"], load: async () => [(await import("./commands/completion.js")).completionCommand] },
  { words: ["help"], load: async () => [(await import("./help/index.js")).helpCommand] },
];

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
