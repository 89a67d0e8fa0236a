/**
 * Tiny bidirectional codecs between the TypeScript model and wire JSON values. Decoding is
 * strict (unknown fields and wrong types are errors naming the JSON path); encoding assumes a
 * well-typed value. Enum codecs translate `{type, ...fields}` to Northstar's externally tagged
 * serde form: a unit variant is the bare string, every other variant a one-key object.
 */

export class DecodeError extends Error {
  override name = "DecodeError";
  constructor(
    readonly path: string,
    readonly reason: string,
  ) {
    super(`${path || "message"}: ${reason}`);
  }
}

export interface Codec<T> {
  decode(value: unknown, path: string): T;
  encode(value: T): unknown;
}

const describe = (v: unknown): string =>
  v === null ? "null" : Array.isArray(v) ? "an array" : typeof v === "object" ? "an object" : typeof v;

const join = (path: string, key: string | number): string =>
  typeof key === "number" ? `${path}[${key}]` : path ? `${path}.${key}` : key;

function primitive<T>(check: (v: unknown) => v is T, expected: string): Codec<T> {
  return {
    decode(value, path) {
      if (!check(value)) throw new DecodeError(path, `expected ${expected}, got ${describe(value)}`);
      return value;
    },
    encode: (value) => value,
  };
}

export const string = primitive((v): v is string => typeof v === "string", "a string");
export const boolean = primitive((v): v is boolean => typeof v === "boolean", "a boolean");
export const integer = primitive((v): v is number => Number.isSafeInteger(v), "an integer");
export const unsigned = primitive(
  (v): v is number => Number.isSafeInteger(v) && (v as number) >= 0,
  "a non-negative integer",
);
export const anyObject = primitive(
  (v): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v),
  "an object",
);

/** A string that must also pass `problem` (which returns a reason or undefined). */
export function checkedString(problem: (s: string) => string | undefined): Codec<string> {
  return {
    decode(value, path) {
      const s = string.decode(value, path);
      const reason = problem(s);
      if (reason) throw new DecodeError(path, reason);
      return s;
    },
    encode: (value) => value,
  };
}

export function literal<T extends string>(...values: T[]): Codec<T> {
  return {
    decode(value, path) {
      if (typeof value !== "string" || !(values as string[]).includes(value)) {
        throw new DecodeError(path, `expected one of ${values.join(", ")}`);
      }
      return value as T;
    },
    encode: (value) => value,
  };
}

export function array<T>(item: Codec<T>): Codec<T[]> {
  return {
    decode(value, path) {
      if (!Array.isArray(value)) throw new DecodeError(path, `expected an array, got ${describe(value)}`);
      return value.map((v, i) => item.decode(v, join(path, i)));
    },
    encode: (value) => value.map((v) => item.encode(v)),
  };
}

export function record<T>(item: Codec<T>): Codec<Record<string, T>> {
  return {
    decode(value, path) {
      const obj = anyObject.decode(value, path);
      const out: Record<string, T> = {};
      for (const [k, v] of Object.entries(obj)) out[k] = item.decode(v, join(path, k));
      return out;
    },
    encode(value) {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) out[k] = item.encode(v);
      return out;
    },
  };
}

export function nullable<T>(inner: Codec<T>): Codec<T | null> {
  return {
    decode: (value, path) => (value === null || value === undefined ? null : inner.decode(value, path)),
    encode: (value) => (value === null ? null : inner.encode(value)),
  };
}

/** A field that may be absent on the wire; `fallback` is used then (serde's `default`). */
export interface FieldSpec<T> {
  codec: Codec<T>;
  /** Absent fields decode to this; without it an absent field is an error. */
  fallback?: () => T;
  /** Omit the field when encoding if it is undefined (Skiff's additive fields). */
  omitUndefined?: boolean;
}

export type Fields = Record<string, Codec<unknown> | FieldSpec<unknown>>;

/**
 * A codec of exactly `T`: `Codec` alone is covariant (its `encode` is a method, so bivariant),
 * which would let a codec for a narrower type (a literal missing a member, a non-nullable codec
 * for a nullable field) stand for a wider one. The function-typed `encode` makes it invariant.
 */
export type Exact<T> = Codec<T> & { encode: (value: T) => unknown };

type OptionalKey<T, K extends keyof T> = object extends Pick<T, K> ? true : false;

/**
 * The field codecs of a struct whose decoded type is `T`: one per key of `T`, each decoding
 * exactly that key's type (an optional key takes `optional(...)`); a key missing here or one
 * `T` does not have is a compile error, so a model type and its codec cannot drift apart.
 */
export type FieldsOf<T> = {
  [K in keyof T]-?: OptionalKey<T, K> extends true
    ? FieldSpec<Exclude<T[K], undefined> | undefined>
    : Exact<T[K]> | FieldSpec<T[K]>;
};

const fieldSpec = (f: Codec<unknown> | FieldSpec<unknown>): FieldSpec<unknown> =>
  "codec" in f ? f : { codec: f };

export function optional<T>(codec: Codec<T>): FieldSpec<T | undefined> {
  return { codec: codec as Codec<T | undefined>, fallback: () => undefined, omitUndefined: true };
}

export function withDefault<T>(codec: Codec<T>, fallback: () => T): FieldSpec<T> {
  return { codec, fallback };
}

export function struct<T extends object>(typed: FieldsOf<T>): Codec<T> {
  const fields = typed as Fields;
  const specs = Object.entries(fields).map(([k, f]) => [k, fieldSpec(f)] as const);
  const known = new Set(Object.keys(fields));
  return {
    decode(value, path) {
      const obj = anyObject.decode(value, path);
      for (const k of Object.keys(obj)) {
        if (!known.has(k)) throw new DecodeError(join(path, k), "unknown field");
      }
      const out: Record<string, unknown> = {};
      for (const [k, spec] of specs) {
        if (!(k in obj) || obj[k] === undefined) {
          if (!spec.fallback) throw new DecodeError(join(path, k), "missing field");
          const v = spec.fallback();
          if (v !== undefined) out[k] = v;
          continue;
        }
        out[k] = spec.codec.decode(obj[k], join(path, k));
      }
      return out as T;
    },
    encode(value) {
      const src = value as Record<string, unknown>;
      const out: Record<string, unknown> = {};
      for (const [k, spec] of specs) {
        if (src[k] === undefined && spec.omitUndefined) continue;
        out[k] = spec.codec.encode(src[k]);
      }
      return out;
    },
  };
}

/** How one enum variant looks on the wire. */
export type Variant =
  /** `"name"` (serde also accepts `{"name": null}`, so do we). */
  | { kind: "unit" }
  /** `{"name": {fields...}}`; the TypeScript value carries the same fields beside `type`. */
  | { kind: "struct"; fields: Fields }
  /** `{"name": value}`; the TypeScript value holds it in `field`. */
  | { kind: "newtype"; field: string; codec: Codec<unknown> }
  /** `{"name": [a, b]}`; the TypeScript value holds the elements in `fields`, in order. */
  | { kind: "tuple"; fields: [string, Codec<unknown>][] };

export const unit = { kind: "unit" } as const;

type Body<V> = Omit<V, "type">;

/** How the variant `V` (one member of a `{type, ...}` union) may look on the wire, typed by `V`. */
export type VariantOf<V> =
  | ([keyof Body<V>] extends [never] ? typeof unit : never)
  | { kind: "struct"; fields: FieldsOf<Body<V>> }
  | { [F in keyof Body<V>]-?: { kind: "newtype"; field: F; codec: Exact<Body<V>[F]> } }[keyof Body<V>]
  | { kind: "tuple"; fields: [keyof Body<V> & string, Codec<unknown>][] };

/** One wire form per member of the union `T`, by its `type`: no more, no fewer. */
export type VariantsOf<T extends { type: string }> = { [K in T["type"]]: VariantOf<Extract<T, { type: K }>> };

export function enumeration<T extends { type: string }>(what: string, typed: VariantsOf<T>): Codec<T> {
  const variants = typed as Record<string, Variant>;
  const structs = new Map<string, Codec<Record<string, unknown>>>();
  for (const [name, v] of Object.entries(variants)) {
    if (v.kind === "struct") structs.set(name, struct(v.fields));
  }
  const names = Object.keys(variants).join(", ");
  return {
    decode(value, path) {
      let name: string;
      let body: unknown = null;
      if (typeof value === "string") {
        name = value;
      } else if (typeof value === "object" && value !== null && !Array.isArray(value)) {
        const keys = Object.keys(value);
        if (keys.length !== 1)
          throw new DecodeError(path, `expected one ${what} variant, got ${keys.length} keys`);
        name = keys[0]!;
        body = (value as Record<string, unknown>)[name];
      } else {
        throw new DecodeError(path, `expected a ${what}, got ${describe(value)}`);
      }
      const variant = variants[name];
      if (!variant || !Object.hasOwn(variants, name)) {
        throw new DecodeError(path, `unknown ${what} ${JSON.stringify(name)} (expected one of ${names})`);
      }
      const at = join(path, name);
      switch (variant.kind) {
        case "unit":
          if (body !== null) throw new DecodeError(at, "expected no value");
          return { type: name } as T;
        case "struct":
          if (typeof value === "string") throw new DecodeError(path, `${what} ${name} needs fields`);
          return { type: name, ...structs.get(name)!.decode(body, at) } as T;
        case "newtype":
          if (typeof value === "string") throw new DecodeError(path, `${what} ${name} needs a value`);
          return { type: name, [variant.field]: variant.codec.decode(body, at) } as T;
        case "tuple": {
          if (!Array.isArray(body) || body.length !== variant.fields.length) {
            throw new DecodeError(at, `expected an array of ${variant.fields.length} elements`);
          }
          const out: Record<string, unknown> = { type: name };
          variant.fields.forEach(([field, codec], i) => (out[field] = codec.decode(body[i], join(at, i))));
          return out as T;
        }
      }
    },
    encode(value) {
      const variant = variants[value.type]!;
      const src = value as unknown as Record<string, unknown>;
      switch (variant.kind) {
        case "unit":
          return value.type;
        case "struct":
          return { [value.type]: structs.get(value.type)!.encode(src) };
        case "newtype":
          return { [value.type]: variant.codec.encode(src[variant.field]) };
        case "tuple":
          return { [value.type]: variant.fields.map(([field, codec]) => codec.encode(src[field])) };
      }
    },
  };
}

/** A codec defined later (for recursive shapes such as `permission_denied` holding a request). */
export function lazy<T>(get: () => Codec<T>): Codec<T> {
  return { decode: (v, p) => get().decode(v, p), encode: (v) => get().encode(v) };
}
