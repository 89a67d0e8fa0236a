// `yaml` on first use. A daemon's start-up scan reads every installed package's meta and
// signature.yaml, both in the exact forms Northstar and Skiff write, and takes manifests it has
// parsed before from its cache (JSON): it needs no YAML parser unless a package deviates from
// those forms or a manifest is new (docs/footprint.md). The package is CommonJS on Node, so the
// synchronous require serves the synchronous parsers (meta.ts, signature.ts, manifest/parse.ts).
import { createRequire } from "node:module";
import type * as YamlModule from "yaml";

type Yaml = typeof YamlModule;

let loaded: Yaml | undefined;

export function yamlLib(): Yaml {
  loaded ??= createRequire(import.meta.url)("yaml") as Yaml;
  return loaded;
}
