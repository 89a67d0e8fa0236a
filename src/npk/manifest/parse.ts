import { parse as parseToml, TomlDate } from "smol-toml";
import type { Node as YamlNode } from "yaml";
import { yamlLib } from "../yaml-lib.js";
import { decodeManifest } from "./decode.js";
import { ManifestError } from "./errors.js";
import { checkTreeLimits, MANIFEST_LIMITS, PlainScalar, type Raw, ValueBudget } from "./reader.js";
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

/**
 * Parses, decodes and validates a manifest. Throws ManifestError listing every problem.
 * Bounded: see MANIFEST_LIMITS (reader.ts); the work done is linear in the text's size.
 */
export function parseManifest(text: string, format: ManifestFormat = "yaml"): Manifest {
  const manifest = decodeManifest(readDocument(text, format));
  validateManifest(manifest);
  return manifest;
}

function limitError(reason: string): ManifestError {
  return new ManifestError([{ path: "", reason }]);
}

function readDocument(text: string, format: ManifestFormat): Raw {
  // A UTF-16 unit is at least one UTF-8 byte: the cheap test first, the exact count after.
  if (text.length > MANIFEST_LIMITS.maxBytes || Buffer.byteLength(text) > MANIFEST_LIMITS.maxBytes) {
    throw limitError(`larger than ${MANIFEST_LIMITS.maxBytes} bytes`);
  }
  if (format === "yaml") return fromYaml(text);
  let tree: unknown;
  try {
    tree = format === "json" ? JSON.parse(text) : parseToml(text);
  } catch (error) {
    throw new ManifestError([{ path: "", reason: `${format} syntax: ${(error as Error).message}` }]);
  }
  // JSON.parse is iterative; smol-toml's recursion ends in a RangeError on deep input, caught
  // above. The tree is checked iteratively before anything here recurses into it.
  checkTreeLimits(tree);
  return format === "toml" ? fromToml(tree) : (tree as Raw);
}

function fromToml(value: unknown): Raw {
  if (value instanceof TomlDate) return value.toISOString();
  if (Array.isArray(value)) return value.map(fromToml);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, fromToml(v)]));
  }
  return value as Raw;
}

/** `|` or `>`, indentation and chomping indicators, then only a comment up to the end of line. */
const BLOCK_SCALAR_HEADER = /[|>][1-9+-]{0,2}[ \t]*(?:#[^\n]*)?\r?$/my;

/**
 * An upper bound of the nesting depth of a YAML text, found in one linear pass without parsing:
 * the `yaml` package's lexer, parser and composer all recurse once per level (and its lexer
 * spends time quadratic in the depth of `- - - x`), so deep input must be refused before it
 * gets there. Counts flow brackets outside quoted scalars and comments, and per line the
 * enclosing indentation levels, counting the content column after each block indicator
 * (`- `, `? `, `: `) as a level of its own; block scalar bodies (`|`, `>`) are skipped.
 * Over-counting is harmless (the limit is far above what manifests use). That it never
 * under-counts is a property test (test/unit/fuzz/manifest.test.ts); should the parser still
 * run out of stack, fromYaml turns that into a ManifestError too.
 */
export function yamlNestingBound(text: string): number {
  const indents: number[] = [];
  let flow = 0;
  let quote: "'" | '"' | undefined;
  let blockScalarIndent: number | undefined;
  /** Block nesting of the last line that started in block context; flow continues from there. */
  let block = 0;
  let max = 0;
  let lineStart = 0;
  while (lineStart <= text.length) {
    let lineEnd = text.indexOf("\n", lineStart);
    if (lineEnd < 0) lineEnd = text.length;
    let i = lineStart;
    while (i < lineEnd && text[i] === " ") i++;
    const indent = i - lineStart;
    const blank = i === lineEnd || text[i] === "\r" || text[i] === "#";
    if (blockScalarIndent !== undefined && (blank || indent > blockScalarIndent)) {
      lineStart = lineEnd + 1;
      continue;
    }
    blockScalarIndent = undefined;
    if (quote === undefined && flow === 0 && !blank) {
      while (indents.length > 0 && indents[indents.length - 1]! >= indent) indents.pop();
      indents.push(indent);
      // `- - key: x` opens a collection at each indicator's content column.
      while (
        i < lineEnd &&
        "-?:".includes(text[i]!) &&
        (i + 1 === lineEnd || " \t\r".includes(text[i + 1]!))
      ) {
        i += 1;
        while (i < lineEnd && text[i] === " ") i++;
        indents.push(i - lineStart);
      }
      block = indents.length;
    }
    let depth = block + flow;
    let valueStart = true; // a scalar or a flow collection may start here
    let afterSpace = true; // a `#` here starts a comment
    for (; i < lineEnd; i++) {
      const c = text[i]!;
      if (quote !== undefined) {
        if (c === "\\" && quote === '"') i++;
        else if (c === quote) {
          if (quote === "'" && text[i + 1] === "'") i++;
          else quote = undefined;
        }
        continue;
      }
      if (c === " " || c === "\t") {
        afterSpace = true;
        continue;
      }
      if (c === "#" && afterSpace) break;
      afterSpace = false;
      const indicator = i + 1 === lineEnd || " \t\r".includes(text[i + 1]!);
      if (valueStart && (c === "'" || c === '"')) {
        quote = c;
        valueStart = false;
      } else if ((c === "[" || c === "{") && (flow > 0 || valueStart)) {
        flow++;
        depth++;
        max = Math.max(max, depth);
        valueStart = true;
      } else if ((c === "]" || c === "}") && flow > 0) {
        flow--;
        valueStart = false;
      } else if (flow > 0 && (c === "," || c === ":")) valueStart = true;
      else if (flow === 0 && c === ":" && indicator) valueStart = true;
      else if (flow === 0 && valueStart && (c === "|" || c === ">")) {
        BLOCK_SCALAR_HEADER.lastIndex = i;
        if (BLOCK_SCALAR_HEADER.test(text)) {
          blockScalarIndent = indent;
          break;
        }
        valueStart = false;
      } else valueStart = false;
    }
    max = Math.max(max, depth);
    lineStart = lineEnd + 1;
  }
  // Plus the scalars inside the deepest collection (MANIFEST_LIMITS counts them as a level).
  return max + 1;
}

function fromYaml(text: string): Raw {
  if (yamlNestingBound(text) > MANIFEST_LIMITS.maxDepth) {
    throw limitError(`nested deeper than ${MANIFEST_LIMITS.maxDepth} levels`);
  }
  // No `uniqueKeys`: the package checks it by comparing every key with every earlier one
  // (quadratic: 16k keys took seconds); fromYamlNode checks duplicates with a hash lookup.
  let doc: ReturnType<ReturnType<typeof yamlLib>["parseDocument"]>;
  try {
    doc = yamlLib().parseDocument(text, { uniqueKeys: false, prettyErrors: true });
  } catch (error) {
    // Only if the pre-scan under-counted: the parser's recursion ran out of stack.
    if (error instanceof RangeError) throw limitError(`nested too deeply: ${error.message}`);
    throw error;
  }
  if (doc.errors.length > 0) {
    throw new ManifestError(
      doc.errors.map((error) => ({ path: "", reason: `yaml syntax: ${error.message}` })),
    );
  }
  return fromYamlNode(doc.contents, { budget: new ValueBudget(), anchors: new Map(), expanding: 0 }, 1);
}

/** `!name` (a local tag) as used by serde_yaml for enum variants; undefined for standard tags. */
function localTag(node: YamlNode): string | undefined {
  const tag = node.tag;
  return tag !== undefined && tag.startsWith("!") && !tag.startsWith("!!") ? tag.slice(1) : undefined;
}

/**
 * The state of one conversion. The package's own `Alias.resolve` searches the whole document
 * on every call (quadratic with many aliases), so anchors are recorded as they are met.
 */
interface YamlWalk {
  budget: ValueBudget;
  anchors: Map<string, YamlNode>;
  /** How many alias expansions enclose the node being converted. */
  expanding: number;
}

/**
 * Converts the YAML tree to Raw. serde_yaml writes enum variants with content as `!variant content`;
 * those become `{ variant: content }`, the externally tagged form JSON and TOML use.
 */
function fromYamlNode(node: unknown, walk: YamlWalk, depth: number): Raw {
  walk.budget.take(depth);
  if (node === null || node === undefined) return null;
  const { isAlias, isMap, isScalar, isSeq } = yamlLib();
  if (isAlias(node)) {
    // Expanded where it is used; the budget counts every expansion, so a bomb stops early.
    const target = walk.anchors.get(node.source);
    if (target === undefined) throw limitError(`unknown alias *${node.source}`);
    walk.expanding++;
    try {
      return fromYamlNode(target, walk, depth);
    } finally {
      walk.expanding--;
    }
  }
  // Anchors are met in document order, before their aliases; inside an expansion they are
  // the same nodes again and must not shadow a later redefinition.
  if (walk.expanding === 0 && (isMap(node) || isSeq(node) || isScalar(node)) && node.anchor) {
    walk.anchors.set(node.anchor, node);
  }
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
      if (Object.hasOwn(out, key)) throw limitError(`duplicate key "${key}": map keys must be unique`);
      // defineProperty: a `__proto__` key is data here, not the object's prototype.
      Object.defineProperty(out, key, {
        value: fromYamlNode(pair.value, walk, depth + 1),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    value = out;
  } else if (isSeq(node)) {
    value = node.items.map((item) => fromYamlNode(item, walk, depth + 1));
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
  const doc = new (yamlLib().Document)(manifest);
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
