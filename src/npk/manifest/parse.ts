import { parse as parseToml, TomlDate } from "smol-toml";
import YAML, { isAlias, isMap, isScalar, isSeq, type Node as YamlNode, type Document } from "yaml";
import { decodeManifest } from "./decode.js";
import { ManifestError } from "./errors.js";
import { PlainScalar, type Raw } from "./reader.js";
import type { Manifest } from "./types.js";
import { validateManifest } from "./validate.js";

export type ManifestFormat = "yaml" | "json" | "toml";

/** Picks the manifest format from a file name's extension (`.yaml`/`.yml`, `.json`, `.toml`). */
export function manifestFormatFromPath(path: string): ManifestFormat {
  const extension = path.slice(path.lastIndexOf(".") + 1).toLowerCase();
  if (extension === "yaml" || extension === "yml") return "yaml";
  if (extension === "json" || extension === "toml") return extension;
  throw new Error(`cannot tell the manifest format of "${path}": expected .yaml, .yml, .json or .toml`);
}

/** Parses, decodes and validates a manifest. Throws ManifestError listing every problem. */
export function parseManifest(text: string, format: ManifestFormat = "yaml"): Manifest {
  const manifest = decodeManifest(readDocument(text, format));
  validateManifest(manifest);
  return manifest;
}

function readDocument(text: string, format: ManifestFormat): Raw {
  try {
    if (format === "json") return JSON.parse(text) as Raw;
    if (format === "toml") return fromToml(parseToml(text));
  } catch (error) {
    throw new ManifestError([{ path: "", reason: `${format} syntax: ${(error as Error).message}` }]);
  }
  return fromYaml(text);
}

function fromToml(value: unknown): Raw {
  if (value instanceof TomlDate) return value.toISOString();
  if (Array.isArray(value)) return value.map(fromToml);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, fromToml(v)]));
  }
  return value as Raw;
}

function fromYaml(text: string): Raw {
  const doc = YAML.parseDocument(text, { uniqueKeys: true, prettyErrors: true });
  if (doc.errors.length > 0) {
    throw new ManifestError(
      doc.errors.map((error) => ({ path: "", reason: `yaml syntax: ${error.message}` })),
    );
  }
  return fromYamlNode(doc, doc.contents);
}

/** `!name` (a local tag) as used by serde_yaml for enum variants; undefined for standard tags. */
function localTag(node: YamlNode): string | undefined {
  const tag = node.tag;
  return tag !== undefined && tag.startsWith("!") && !tag.startsWith("!!") ? tag.slice(1) : undefined;
}

/**
 * Converts the YAML tree to Raw. serde_yaml writes enum variants with content as `!variant content`;
 * those become `{ variant: content }`, the externally tagged form JSON and TOML use.
 */
function fromYamlNode(doc: Document, node: unknown): Raw {
  if (node === null || node === undefined) return null;
  if (isAlias(node)) return fromYamlNode(doc, node.resolve(doc));
  let value: Raw;
  if (isMap(node)) {
    const out: Record<string, Raw> = {};
    for (const pair of node.items) {
      // Keys are strings in every manifest map; a plain `1.0` key stays "1.0".
      const key = isScalar(pair.key)
        ? typeof pair.key.value === "string"
          ? pair.key.value
          : (pair.key.source ?? String(pair.key.value))
        : String(pair.key);
      out[key] = fromYamlNode(doc, pair.value);
    }
    value = out;
  } else if (isSeq(node)) {
    value = node.items.map((item) => fromYamlNode(doc, item));
  } else if (isScalar(node)) {
    const tag = localTag(node);
    // A tag on an empty scalar is a unit variant: `policy: !idle`.
    if (tag !== undefined && (node.value === null || node.value === "")) return tag;
    const scalar = node.value;
    if (tag !== undefined) value = node.source ?? String(scalar);
    else if (typeof scalar === "string" || scalar === null) value = scalar;
    else if (node.type === "PLAIN" && (typeof scalar === "number" || typeof scalar === "boolean")) {
      value = new PlainScalar(scalar, node.source ?? String(scalar));
    } else value = scalar as Raw;
  } else {
    return null;
  }
  const tag = localTag(node as YamlNode);
  return tag === undefined ? value : { [tag]: value };
}

/** Writes a manifest as YAML in the form Northstar reads back (enum variants as `!tags`). */
export function manifestToYaml(manifest: Manifest): string {
  const doc = new YAML.Document(manifest);
  const tagAt = (path: string[], variant: string, content: unknown) => {
    const node = doc.createNode(content);
    node.tag = `!${variant}`;
    doc.setIn(path, node);
  };
  if (typeof manifest.network === "object") tagAt(["network"], "namespace", manifest.network.namespace);
  const policy = manifest.sched?.policy;
  if (typeof policy === "object") {
    const [variant, content] = Object.entries(policy)[0] as [string, unknown];
    tagAt(["sched", "policy"], variant, content);
  }
  for (const [name, rule] of Object.entries(manifest.seccomp?.allow ?? {})) {
    if (rule !== "any") tagAt(["seccomp", "allow", name], "args", rule.args);
  }
  return doc.toString();
}
