#!/usr/bin/env node
/**
 * skiff, unbundled: `node dist/src/cli/main.js [-u URL] [--json] [-t SECONDS] COMMAND [ARGS]`.
 * The installed program is the bundled dist/cli/skiff.js (bin.ts, docs/footprint.md); this entry
 * runs the same `runCli` from the tsc output, module by module, and is what tests import.
 */
import { pathToFileURL } from "node:url";
import { enableCompileCache } from "./compile-cache.js";
import { runCli, runProgram } from "./run.js";

export { runCli };

/**
 * True when this module is the program (not imported by tests). Node >= 22.18 / 24.2 says so itself
 * (`import.meta.main`); only older ones compare the real path of argv[1], which loads node:fs and its
 * ~30 internal modules (docs/footprint.md).
 */
function isProgram(): boolean {
  const main = (import.meta as { main?: boolean }).main;
  if (main !== undefined) return main;
  const script = process.argv[1];
  return (
    script !== undefined &&
    import.meta.url === pathToFileURL(process.getBuiltinModule("node:fs").realpathSync(script)).href
  );
}

if (isProgram()) {
  enableCompileCache();
  runProgram();
}
