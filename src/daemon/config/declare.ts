/**
 * How the configuration is declared: once. Each key of a table is one entry that names its TOML
 * key, its reader (a Codec, which also gives its TypeScript type) and its default; the table's
 * type (`Declared`), its defaults (`defaultsOf`) and its TOML reader (`tableCodec`) all come from
 * that one entry. schema.ts declares every table of skiffd's configuration this way.
 */
import { DecodeError, anyObject, type Codec } from "../../common/schema.js";

/** One key of a table: the TOML key, its reader, and its default (absent: the key is required). */
export interface Key<T, Optional extends boolean = false> {
  readonly toml: string;
  readonly codec: Codec<T>;
  readonly fallback: (() => T) | undefined;
  /** Absent from the file and without a default: absent from the decoded table too. */
  readonly optional: Optional;
  /** The declaration of its value when that is a table, or a table of named tables. */
  readonly table?: Declaration;
  /** With `table`: a table of tables named by the user (`[console.<id>]`), not one table. */
  readonly named?: boolean;
}

/** A key with a default; `fallback` gives a fresh value each time (tables, lists). */
export function key<T>(toml: string, codec: Codec<T>, fallback: () => T): Key<T> {
  return { toml, codec, fallback, optional: false };
}

/** A key that may be absent: then it is absent from the decoded table. */
export function optionalKey<T>(toml: string, codec: Codec<T>): Key<T, true> {
  return { toml, codec, fallback: undefined, optional: true };
}

/** A key that must be present. */
export function requiredKey<T>(toml: string, codec: Codec<T>): Key<T> {
  return { toml, codec, fallback: undefined, optional: false };
}

export type Declaration = Record<string, Key<unknown, boolean>>;

/** The same key, marked as holding the table(s) `table` declares (for listings such as the docs test). */
export function holding<K extends Key<unknown, boolean>>(k: K, table: Declaration, named = false): K {
  return { ...k, table, named };
}

/** Every TOML key path of a declaration: `cgroup`, `runtime.kind`, `console.*.url`, ... */
export function tomlPaths(declaration: Declaration, prefix = ""): string[] {
  return Object.values(declaration).flatMap((k) => {
    const path = `${prefix}${k.toml}`;
    return k.table === undefined ? [path] : tomlPaths(k.table, `${path}${k.named === true ? ".*" : ""}.`);
  });
}

type OptionalNames<D extends Declaration> = {
  [K in keyof D]: D[K] extends Key<unknown, true> ? K : never;
}[keyof D];
type ValueOf<E> = E extends Key<infer T, boolean> ? T : never;

/** The decoded table: required keys and keys with a default are always there, optional ones may be absent. */
export type Declared<D extends Declaration> = Flat<
  { -readonly [K in Exclude<keyof D, OptionalNames<D>>]: ValueOf<D[K]> } & {
    -readonly [K in OptionalNames<D>]?: ValueOf<D[K]>;
  }
>;
type Flat<T> = { [K in keyof T]: T[K] };

/** The table as a file without any of its keys reads: every default. Throws for a required key. */
export function defaultsOf<D extends Declaration>(declaration: D): Declared<D> {
  return tableCodec(declaration).decode({}, "");
}

/**
 * Reads a TOML table by its declaration: unknown keys are refused, each key is read by its codec
 * at its key path, absent keys take their default (or stay absent when optional).
 */
export function tableCodec<D extends Declaration>(declaration: D): Codec<Declared<D>> {
  const entries = Object.entries(declaration);
  const known = new Set(entries.map(([, k]) => k.toml));
  const join = (path: string, name: string): string => (path === "" ? name : `${path}.${name}`);
  return {
    decode(value, path) {
      const table = anyObject.decode(value, path);
      for (const name of Object.keys(table)) {
        if (!known.has(name)) throw new DecodeError(join(path, name), "unknown field");
      }
      const out: Record<string, unknown> = {};
      for (const [field, k] of entries) {
        const raw = table[k.toml];
        if (raw === undefined) {
          if (k.fallback !== undefined) out[field] = k.fallback();
          else if (!k.optional) throw new DecodeError(join(path, k.toml), "missing field");
          continue;
        }
        out[field] = k.codec.decode(raw, join(path, k.toml));
      }
      return out as Declared<D>;
    },
    encode(value) {
      const source = value as Record<string, unknown>;
      const out: Record<string, unknown> = {};
      for (const [field, k] of entries) {
        if (source[field] !== undefined) out[k.toml] = k.codec.encode(source[field]);
      }
      return out;
    },
  };
}
