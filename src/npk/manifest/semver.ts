// `semver` on first use. Requiring the whole package costs a process ~6 MiB of RSS (the node binary's
// compiler pages touched compiling it, and its code), which an idle daemon serving no package with a
// resource mount does not need (docs/footprint.md). The package is CommonJS, so the synchronous
// require serves the pure, synchronous code that compares versions (state transitions, validation).
import { createRequire } from "node:module";
import type * as SemverModule from "semver";

type Semver = typeof SemverModule;

let loaded: Semver | undefined;

export function semverLib(): Semver {
  loaded ??= createRequire(import.meta.url)("semver") as Semver;
  return loaded;
}
