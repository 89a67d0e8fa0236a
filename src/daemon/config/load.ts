import { readFile } from "node:fs/promises";
import { parse as parseToml, TomlError } from "smol-toml";
import { DecodeError } from "../../common/schema.js";
import { translateNorthstar } from "./northstar.js";
import { configFromToml, type DaemonConfig } from "./schema.js";
import { messageOf } from "../../common/errors.js";

export class ConfigError extends Error {
  override name = "ConfigError";
}

/**
 * Parses TOML text into a validated configuration. Throws ConfigError naming the key path.
 * Northstar's `northstar.toml` keys are translated first (northstar.ts); relative paths in such
 * a file are taken from `cwd`.
 */
export function parseConfig(text: string, source = "config", cwd = process.cwd()): DaemonConfig {
  let doc: unknown;
  try {
    doc = parseToml(text);
  } catch (e) {
    const detail =
      e instanceof TomlError ? `line ${e.line}, column ${e.column}: ${e.message.split("\n")[0]}` : String(e);
    throw new ConfigError(`${source}: invalid TOML: ${detail}`);
  }
  try {
    const { doc: translated, notes } = translateNorthstar(doc, cwd);
    return { ...configFromToml(translated), notes };
  } catch (e) {
    if (e instanceof DecodeError) throw new ConfigError(`${source}: ${e.path}: ${e.reason}`);
    throw e;
  }
}

/**
 * The configuration `skiffd` runs on without `--config`: everything under /var/lib/skiff, one
 * Unix socket console with full permissions (the schema's defaults), and one unkeyed `fs`
 * repository that `scripts/setup.sh` fills with the example packages.
 */
export const EMBEDDED_DEFAULT_CONFIG = `
[repositories.default]
type = "fs"
dir = "/var/lib/skiff/repository"
`;

/** Reads `path`, or returns the embedded default configuration when no path is given. */
export async function loadConfig(path?: string): Promise<DaemonConfig> {
  if (path === undefined) return parseConfig(EMBEDDED_DEFAULT_CONFIG, "embedded default");
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    throw new ConfigError(`cannot read ${path}: ${messageOf(e)}`);
  }
  return parseConfig(text, path);
}
