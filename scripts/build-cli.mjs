#!/usr/bin/env node
/**
 * Builds the installed `skiff` command into dist/cli/ (after tsc, `npm run build`):
 *   skiff.js      the program (src/cli/bin.ts): picks the bundle of the command word's module;
 *   BUNDLE.js     one per command module (src/cli/words.ts): the module and src/cli/run.ts with all
 *                 they import from src/cli, src/client, src/protocol and src/common, in one ES module.
 * Why: node resolves and links each ES module file on its own; one file per command instead of ~22
 * is most of the difference on Node 24 (docs/footprint.md). esbuild (a dev dependency) bundles
 * straight from the TypeScript sources, with source maps (dist/cli/*.js.map; run with
 * `node --enable-source-maps` for stack traces in src/ terms).
 *
 * What stays outside a bundle, imported from where it is anyway:
 * - npm packages (node_modules), as in the unbundled build;
 * - a command module imported by another module (registry.ts, the help page, `inspect FILE`'s
 *   package.ts): the import loads that module's bundle, so a bundle holds one module's commands and
 *   nothing lazily imported is parsed by a command that does not use it. registry.ts's import of the
 *   bundle's own module is the bundle itself, already loaded (inlined, it would make esbuild wrap
 *   every module of the bundle in a lazy initialiser, ~1 ms more per command);
 * - every other part of src/ (src/npk, src/oci-image, src/daemon...): the tsc output in dist/src/,
 *   which is where its workers and files are found relative to import.meta.url;
 * - src/common/version.ts, which reads package.json relative to its own file.
 */
import { build } from "esbuild";
import { chmod } from "node:fs/promises";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const OUT = join(ROOT, "dist", "cli");
const CLI = join(ROOT, "src", "cli");
const { COMMAND_MODULE_WORDS } = await import(join(ROOT, "dist", "src", "cli", "words.js"));

/** Source files (absolute, .ts) of the command modules, to the name of their bundle. */
const MODULE_BUNDLES = new Map(
  COMMAND_MODULE_WORDS.map((m) => [resolve(CLI, m.source).replace(/\.js$/, ".ts"), m.bundle]),
);
/** Folders of src/ whose modules are bundled; the rest of src/ stays in dist/src/. */
const BUNDLED = ["cli", "client", "protocol", "common"].map((d) => join(ROOT, "src", d) + "/");
const UNBUNDLED = new Set([join(ROOT, "src", "common", "version.ts")]);

/** A relative import specifier from dist/cli/ to `file`. */
function fromOut(file) {
  const rel = relative(OUT, file);
  return rel.startsWith(".") ? rel : `./${rel}`;
}

/** The esbuild plugin that draws the lines above. */
function boundaries() {
  return {
    name: "skiff-cli-boundaries",
    setup(b) {
      b.onResolve({ filter: /^\.\.?\// }, (args) => {
        if (!args.importer.startsWith(ROOT)) return undefined;
        const target = resolve(args.resolveDir, args.path).replace(/\.js$/, ".ts");
        const bundle = MODULE_BUNDLES.get(target);
        if (bundle !== undefined) return { path: `./${bundle}.js`, external: true };
        if (UNBUNDLED.has(target) || !BUNDLED.some((d) => target.startsWith(d))) {
          const built = join(ROOT, "dist", relative(ROOT, target)).replace(/\.ts$/, ".js");
          return { path: fromOut(built), external: true };
        }
        return undefined;
      });
    },
  };
}

const common = {
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20.19",
  packages: "external",
  sourcemap: "linked",
  sourcesContent: false,
  logLevel: "warning",
  absWorkingDir: ROOT,
};

await Promise.all([
  build({ ...common, entryPoints: [join(CLI, "bin.ts")], outfile: join(OUT, "skiff.js") }),
  ...[...MODULE_BUNDLES].map(([source, bundle]) =>
    build({
      ...common,
      stdin: {
        // The module's exports (registry.ts and other bundles import them) and the runner.
        contents: `export * from ${JSON.stringify(source)};\nexport { runCli, runProgram } from ${JSON.stringify(join(CLI, "run.ts"))};\n`,
        resolveDir: CLI,
        sourcefile: `${bundle}.bundle.ts`, // virtual: no such file
        loader: "ts",
      },
      outfile: join(OUT, `${bundle}.js`),
      plugins: [boundaries()],
    }),
  ),
]);
await chmod(join(OUT, "skiff.js"), 0o755);
