/**
 * How the configuration is declared: once. Each key of a table is one entry that names its TOML
 * key, its reader (a Codec, which also gives its TypeScript type) and its default; the table's
 * type (`Declared`), its defaults (`defaultsOf`) and its TOML reader (`tableCodec`) all come from
 * that one entry. schema.ts declares every table of skiffd's configuration this way.
 */
import { struct, type Codec } from "../../common/schema.js";

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
 * Reads a TOML table by its declaration: common/schema.ts's `struct` over the TOML names (unknown
 * keys refused, each key read by its codec at its key path, absent keys take their default or
 * stay absent when optional), handed on under the declared names.
 */
export function tableCodec<D extends Declaration>(declaration: D): Codec<Declared<D>> {
  const entries = Object.entries(declaration);
  const byToml = struct<Record<string, unknown>>(
    Object.fromEntries(
      entries.map(([, k]) => [
        k.toml,
        {
          codec: k.codec,
          fallback: k.fallback ?? (k.optional ? () => undefined : undefined),
          omitUndefined: true,
        },
      ]),
    ),
  );
  const rename = (
    from: Record<string, unknown>,
    name: (field: string, k: Key<unknown, boolean>) => [string, string],
  ) =>
    Object.fromEntries(
      entries.flatMap(([field, k]) => {
        const [source, target] = name(field, k);
        return from[source] === undefined ? [] : [[target, from[source]]];
      }),
    );
  return {
    decode: (value, path) => rename(byToml.decode(value, path), (field, k) => [k.toml, field]) as Declared<D>,
    encode: (value) => byToml.encode(rename(value as Record<string, unknown>, (field, k) => [field, k.toml])),
  };
}
