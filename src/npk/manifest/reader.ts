import { type IssueList, joinPath, ManifestError } from "./errors.js";

/**
 * Hard limits on a manifest document, checked before the work they bound: the byte size before
 * any parsing, the nesting depth before the YAML parser recurses (see parse.ts), the number of
 * values (every alias expansion counted again, so an alias bomb is cut short) while the document
 * is turned into a Raw tree, and the number of keys of a map before its entries are decoded.
 * A real device manifest is a few KiB with fewer than a thousand values.
 */
export const MANIFEST_LIMITS = {
  /** Bytes of manifest text (UTF-8). */
  maxBytes: 64 * 1024,
  /** Nesting levels, the document root being level 1 and a scalar a level of its own. */
  maxDepth: 32,
  /** Values in the whole document (maps, sequences, scalars), alias expansions included. */
  maxValues: 2048,
} as const;

/** Counts values while a parsed document is converted to Raw; throws once a limit is passed. */
export class ValueBudget {
  private values = 0;

  /** Call once per value produced, with its nesting depth (root = 1). */
  take(depth: number): void {
    if (depth > MANIFEST_LIMITS.maxDepth) {
      throw new ManifestError([
        { path: "", reason: `nested deeper than ${MANIFEST_LIMITS.maxDepth} levels` },
      ]);
    }
    if (++this.values > MANIFEST_LIMITS.maxValues) {
      throw new ManifestError([
        {
          path: "",
          reason: `more than ${MANIFEST_LIMITS.maxValues} values (aliases count once per use)`,
        },
      ]);
    }
  }
}

/**
 * Checks a tree that was parsed without a budget (JSON, TOML) against the depth and value
 * limits, iteratively so a deep tree cannot overflow the stack here.
 */
export function checkTreeLimits(root: unknown): void {
  const budget = new ValueBudget();
  const stack: [unknown, number][] = [[root, 1]];
  for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
    const [value, depth] = next;
    budget.take(depth);
    if (Array.isArray(value)) for (const item of value) stack.push([item, depth + 1]);
    else if (value !== null && typeof value === "object") {
      for (const key in value) stack.push([(value as Record<string, unknown>)[key], depth + 1]);
    }
  }
}

/**
 * A YAML plain scalar that resolved to a number, boolean or null. Kept with its source text because
 * serde_yaml lets such a scalar fill a string field verbatim (`THREADS: 4`, `cpus: 0,1`, `VERSION: 1.0`).
 */
export class PlainScalar {
  constructor(
    readonly value: number | boolean,
    readonly source: string,
  ) {}
}

/** The tree a manifest document decodes into before it is checked: JSON values plus PlainScalar. */
export type Raw = null | boolean | number | string | PlainScalar | Raw[] | { [key: string]: Raw };
export type RawObject = { [key: string]: Raw };

function unwrap(value: Raw): Raw {
  return value instanceof PlainScalar ? value.value : value;
}

function describe(value: Raw): string {
  const plain = unwrap(value);
  if (plain === null) return "null";
  if (Array.isArray(plain)) return "a sequence";
  if (typeof plain === "object") return "a map";
  return `${typeof plain} ${JSON.stringify(plain)}`;
}

/** Converts the raw tree to plain JSON (for the free-form `custom` field). */
export function toJson(value: Raw): unknown {
  const plain = unwrap(value);
  if (Array.isArray(plain)) return plain.map(toJson);
  if (plain !== null && typeof plain === "object") {
    return Object.fromEntries(Object.entries(plain as RawObject).map(([k, v]) => [k, toJson(v)]));
  }
  return plain;
}

export function isRawObject(value: Raw): value is RawObject {
  return (
    value !== null && typeof value === "object" && !Array.isArray(value) && !(value instanceof PlainScalar)
  );
}

/**
 * Typed reads from the raw tree that record an issue (with the field path) instead of throwing,
 * so one pass reports every problem. Each read returns undefined when the value is unusable.
 */
export class Reader {
  constructor(readonly issues: IssueList) {}

  object(value: Raw, path: string, allowed: readonly string[], required: readonly string[] = []) {
    return this.struct(value, path, allowed, required, "deny_unknown");
  }

  /**
   * A map with known fields, where unknown keys are ignored: Northstar's serde structs without
   * `deny_unknown_fields` (cgroups and its sections, sched) accept and drop them.
   */
  tolerantObject(value: Raw, path: string, required: readonly string[] = []) {
    return this.struct(value, path, [], required, "ignore_unknown");
  }

  private struct(
    value: Raw,
    path: string,
    allowed: readonly string[],
    required: readonly string[],
    unknown: "deny_unknown" | "ignore_unknown",
  ) {
    if (!isRawObject(value)) {
      this.issues.add(path, `expected a map, got ${describe(value)}`);
      return undefined;
    }
    if (unknown === "deny_unknown") {
      for (const key of Object.keys(value)) {
        if (!allowed.includes(key)) this.issues.add(joinPath(path, key), "unknown field");
      }
    }
    for (const key of required) {
      if (!(key in value)) this.issues.add(joinPath(path, key), "missing field");
    }
    return value;
  }

  /**
   * A map with arbitrary keys (env, mounts, sockets, ...). With `maxKeys`, a larger map is
   * refused before any of its entries is decoded.
   */
  map(value: Raw, path: string, maxKeys?: number): RawObject | undefined {
    if (!isRawObject(value)) {
      this.issues.add(path, `expected a map, got ${describe(value)}`);
      return undefined;
    }
    if (maxKeys !== undefined && Object.keys(value).length > maxKeys) {
      this.issues.add(path, `at most ${maxKeys} entries`);
      return undefined;
    }
    return value;
  }

  /** A map of strings (env, attrs). */
  stringMap(value: Raw, path: string, maxKeys?: number): Record<string, string> | undefined {
    const map = this.map(value, path, maxKeys);
    if (map === undefined) return undefined;
    const out: Record<string, string> = {};
    for (const [key, item] of Object.entries(map))
      setIfDefined(out, key, this.string(item, joinPath(path, key)));
    return out;
  }

  array(value: Raw, path: string): Raw[] | undefined {
    if (!Array.isArray(value)) {
      this.issues.add(path, `expected a sequence, got ${describe(value)}`);
      return undefined;
    }
    return value;
  }

  /** A string; YAML plain scalars like `4` or `true` are taken verbatim, as serde_yaml does. */
  string(value: Raw, path: string): string | undefined {
    if (typeof value === "string") return value;
    if (value instanceof PlainScalar) return value.source;
    this.issues.add(path, `expected a string, got ${describe(value)}`);
    return undefined;
  }

  /** An integer within [min, max]; also bounds the value to what JSON numbers carry exactly. */
  integer(value: Raw, path: string, min: number, max: number = Number.MAX_SAFE_INTEGER): number | undefined {
    const plain = unwrap(value);
    if (typeof plain !== "number" || !Number.isInteger(plain)) {
      this.issues.add(path, `expected an integer, got ${describe(value)}`);
      return undefined;
    }
    if (plain < min || plain > max) {
      this.issues.add(path, `must be between ${min} and ${max}, got ${plain}`);
      return undefined;
    }
    return plain;
  }

  boolean(value: Raw, path: string): boolean | undefined {
    const plain = unwrap(value);
    if (typeof plain !== "boolean") {
      this.issues.add(path, `expected a boolean, got ${describe(value)}`);
      return undefined;
    }
    return plain;
  }

  /** One of a fixed set of strings. */
  oneOf<T extends string>(value: Raw, path: string, choices: readonly T[]): T | undefined {
    const text = typeof value === "string" ? value : undefined;
    if (text !== undefined && (choices as readonly string[]).includes(text)) return text as T;
    this.issues.add(path, `expected one of ${choices.join(", ")}, got ${describe(value)}`);
    return undefined;
  }

  /**
   * An externally tagged enum value: a bare string for unit variants, or a single-key map
   * `{ variant: content }` (YAML `!variant content` is turned into that map when parsing).
   */
  variant(value: Raw, path: string): { tag: string; content: Raw | undefined } | undefined {
    if (typeof value === "string") return { tag: value, content: undefined };
    if (isRawObject(value)) {
      const keys = Object.keys(value);
      if (keys.length === 1) return { tag: keys[0]!, content: value[keys[0]!] };
    }
    this.issues.add(path, `expected a variant name or a single-key map, got ${describe(value)}`);
    return undefined;
  }
}

/** Assigns `value` to `target[key]` only when it is defined, keeping optional fields absent. */
export function setIfDefined<T extends object, K extends keyof T>(
  target: T,
  key: K,
  value: T[K] | undefined,
) {
  if (value !== undefined) target[key] = value;
}

/** Reads the optional integer fields `spec` ([key, min, max]) of `raw` into `out`, in the order given. */
export function readIntegers<T extends object>(
  read: Reader,
  raw: RawObject,
  path: string,
  out: T,
  spec: [keyof T & string, number, number][],
) {
  for (const [key, min, max] of spec) {
    if (raw[key] != null)
      setIfDefined(out, key, read.integer(raw[key], joinPath(path, key), min, max) as T[typeof key]);
  }
}
