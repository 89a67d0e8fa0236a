import { readFile } from "node:fs/promises";
import { parse as parseToml, TomlError } from "smol-toml";
import { DecodeError } from "../../common/schema.js";
import { configFromToml, type DaemonConfig } from "./schema.js";

export class ConfigError extends Error {
  override name = "ConfigError";
}

/** Parses TOML text into a validated configuration. Throws ConfigError naming the key path. */
export function parseConfig(text: string, source = "config"): DaemonConfig {
  let doc: unknown;
  try {
    doc = parseToml(text);
  } catch (e) {
    const detail =
      e instanceof TomlError ? `line ${e.line}, column ${e.column}: ${e.message.split("\n")[0]}` : String(e);
    throw new ConfigError(`${source}: invalid TOML: ${detail}`);
  }
  try {
    return configFromToml(doc);
  } catch (e) {
    if (e instanceof DecodeError) throw new ConfigError(`${source}: ${e.path}: ${e.reason}`);
    throw e;
  }
}

/** Reads `path`, or returns the embedded default configuration when no path is given. */
export async function loadConfig(path?: string): Promise<DaemonConfig> {
  if (path === undefined) return parseConfig("", "embedded default");
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    throw new ConfigError(`cannot read ${path}: ${(e as Error).message}`);
  }
  return parseConfig(text, path);
}
