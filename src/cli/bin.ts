#!/usr/bin/env node
/**
 * skiff: the installed command-line client (package.json "bin"), built by scripts/build-cli.mjs as
 * dist/cli/skiff.js. It only picks the bundle of the command word's module (dist/cli/BUNDLE.js: that
 * module, run.ts and what they import from src/cli, src/client, src/protocol and src/common, in one
 * file) and runs it: one file for node to resolve and link instead of ~22 (docs/footprint.md).
 * Without a command word, or with an unknown one, the `help` bundle prints the usage.
 */
import { enableCompileCache } from "./compile-cache.js";
import { COMMAND_MODULE_WORDS, commandIndex } from "./words.js";
import type * as Run from "./run.js";

// Before the import below: the bundle is then compiled from (and into) the cache.
enableCompileCache();
const argv = process.argv.slice(2);
const at = commandIndex(argv);
const word = at >= 0 ? argv[at]! : undefined;
const bundle =
  COMMAND_MODULE_WORDS.find((m) => (m.words as readonly string[]).includes(word ?? ""))?.bundle ?? "help";
// A computed specifier: the bundler leaves it to node (the bundles are built beside this file).
const { runProgram } = (await import(new URL(`./${bundle}.js`, import.meta.url).href)) as typeof Run;
runProgram();
