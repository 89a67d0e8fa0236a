/**
 * The model types of messages.ts and the codecs of codec.ts are written apart; the typed
 * `struct` and `enumeration` make any drift between them a compile error. These cases are the
 * proof: each `@ts-expect-error` line fails `tsc` if the drift it shows ever compiles.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  enumeration,
  literal,
  nullable,
  optional,
  string,
  struct,
  unit,
  unsigned,
} from "../../../src/common/schema.js";

type Model = { name: string; size?: number; mode: "a" | "b"; parent: string | null };

describe("codec drift is a compile error", () => {
  it("accepts a struct codec that matches its type", () => {
    const codec = struct<Model>({
      name: string,
      size: optional(unsigned),
      mode: literal("a", "b"),
      parent: nullable(string),
    });
    assert.deepEqual(codec.decode({ name: "x", mode: "a", parent: null }, ""), {
      name: "x",
      mode: "a",
      parent: null,
    });
  });

  it("refuses missing, extra, narrower and wider fields at compile time", () => {
    // @ts-expect-error `parent` is missing
    struct<Model>({ name: string, size: optional(unsigned), mode: literal("a", "b") });
    struct<Model>({
      name: string,
      size: optional(unsigned),
      mode: literal("a", "b"),
      parent: nullable(string),
      // @ts-expect-error `extra` is not in the model
      extra: string,
    });
    // @ts-expect-error the literal misses "b": the codec would refuse what the model allows
    struct<Model>({ name: string, size: optional(unsigned), mode: literal("a"), parent: nullable(string) });
    // @ts-expect-error not nullable: the codec would refuse null
    struct<Model>({ name: string, size: optional(unsigned), mode: literal("a", "b"), parent: string });
    // @ts-expect-error an optional field needs `optional(...)`
    struct<Model>({ name: string, size: unsigned, mode: literal("a", "b"), parent: nullable(string) });
  });

  it("refuses a missing or an extra enum variant at compile time", () => {
    type E = { type: "a" } | { type: "b"; n: number };
    enumeration<E>("e", { a: unit, b: { kind: "struct", fields: { n: unsigned } } });
    // @ts-expect-error variant `b` is missing
    enumeration<E>("e", { a: unit });
    // @ts-expect-error variant `c` is not in the union
    enumeration<E>("e", { a: unit, b: { kind: "struct", fields: { n: unsigned } }, c: unit });
    // @ts-expect-error `a` has no fields, `b` has one
    enumeration<E>("e", { a: unit, b: unit });
  });
});
