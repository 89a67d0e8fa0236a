import * as nodeModule from "node:module";
import { join } from "node:path";

/**
 * ~/.cache, the home directory as os.homedir() finds it: $HOME when set and not empty (libuv's
 * rule), else the password database, asked through node:os only then (node:os is one more of
 * node's modules to load on every command, docs/footprint.md).
 */
function cacheUnderHome(): string | undefined {
  const home = process.env.HOME || process.getBuiltinModule("node:os").homedir();
  return home ? join(home, ".cache") : undefined;
}

/**
 * Node's on-disk cache of compiled modules (Node >= 22.1; Node 20 has none and skips this), per user
 * under the user's cache directory: never a shared directory such as /tmp, where another user could
 * place the code this process runs. Without a home (e.g. a bare service environment) there is no cache.
 */
export function enableCompileCache(): void {
  const enable = (nodeModule as { enableCompileCache?: (dir?: string) => unknown }).enableCompileCache;
  if (enable === undefined) return;
  const base = process.env.XDG_CACHE_HOME ?? cacheUnderHome();
  if (base === undefined) return;
  try {
    enable(join(base, "skiff", "node-compile-cache"));
  } catch {
    // A cache that cannot be used (read-only home...) only costs speed.
  }
}
