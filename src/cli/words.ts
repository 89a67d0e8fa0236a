/**
 * Which command module answers to which word, and where the command word is in argv: all the
 * `skiff` program (bin.ts) needs to pick the one pre-built bundle to load (docs/footprint.md). No
 * imports, so the program's own file stays small. registry.ts pairs each entry with its loader;
 * test/unit/cli/registry.test.ts checks the words against the modules' commands.
 */

/**
 * In help order. `bundle` names the module's bundle, dist/cli/BUNDLE.js (scripts/build-cli.mjs);
 * `source` is the module's path relative to src/cli/, as registry.ts imports it.
 */
export const COMMAND_MODULE_WORDS = [
  {
    bundle: "query",
    source: "./commands/query.js",
    words: ["list", "ls", "inspect", "repositories", "repos", "ident"],
  },
  {
    bundle: "repository",
    source: "./commands/repository.js",
    words: ["install", "uninstall", "mount", "umount"],
  },
  {
    bundle: "containers",
    source: "./commands/containers.js",
    words: ["start", "stop", "kill", "logs", "ps"],
  },
  { bundle: "exec", source: "./commands/exec.js", words: ["exec"] },
  { bundle: "stats", source: "./commands/stats.js", words: ["stats"] },
  {
    bundle: "power",
    source: "./commands/power.js",
    words: ["pause", "resume", "suspend", "wakelock", "wakesource", "proxy", "power"],
  },
  { bundle: "executor", source: "./commands/executor.js", words: ["prepare", "health"] },
  { bundle: "checkpoint", source: "./commands/checkpoint.js", words: ["checkpoint", "restore"] },
  { bundle: "daemon", source: "./commands/daemon.js", words: ["shutdown", "notifications", "events"] },
  { bundle: "token", source: "./commands/token.js", words: ["token", "verify-token"] },
  { bundle: "package", source: "./commands/package.js", words: ["pack", "unpack", "gen-key"] },
  { bundle: "seccomp", source: "./commands/seccomp.js", words: ["seccomp"] },
  { bundle: "completion", source: "./commands/completion.js", words: ["completion"] },
  { bundle: "help", source: "./help/index.js", words: ["help"] },
] as const;

export type CommandBundle = (typeof COMMAND_MODULE_WORDS)[number]["bundle"];

/** The index of the command word: the first positional after the global options (-1: none). */
export function commandIndex(argv: readonly string[]): number {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "-u" || a === "--url" || a === "-t" || a === "--timeout") i++;
    else if (!a.startsWith("-")) return i;
  }
  return -1;
}
