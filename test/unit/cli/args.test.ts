/**
 * args.ts against node:util's parseArgs (strict, positionals allowed), on the CLI's own option
 * tables: the same values and positionals, or the same error (class, code, message), on the
 * running Node (CI runs the unit suite on Node 20 and 24).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseArgs } from "node:util";
import fc from "fast-check";
import { ParseArgsError, parseArguments, type OptionSpec } from "../../../src/cli/args.js";
import { GLOBAL_OPTIONS } from "../../../src/cli/command.js";
import { allCommands } from "../../../src/cli/registry.js";

const TABLES: OptionSpec[] = [
  GLOBAL_OPTIONS,
  ...(await allCommands()).map((c) => ({ ...GLOBAL_OPTIONS, ...c.options })),
];

type Outcome = { values: object; positionals: string[] } | { error: string; code: unknown; message: string };

function outcome(parse: () => { values: object; positionals: string[] }): Outcome {
  try {
    const { values, positionals } = parse();
    return { values, positionals };
  } catch (e) {
    assert.ok(e instanceof TypeError, `not a TypeError: ${String(e)}`);
    return { error: "TypeError", code: (e as { code?: unknown }).code, message: e.message };
  }
}

function assertSame(options: OptionSpec, args: string[]): void {
  const ours = outcome(() => parseArguments(args, options));
  const node = outcome(() => parseArgs({ args, options, strict: true, allowPositionals: true }));
  assert.deepStrictEqual(ours, node, `args ${JSON.stringify(args)}`);
}

/** Words that exercise each rule: short, long, grouped, inline values, terminators, odd dashes. */
function argument(options: OptionSpec): fc.Arbitrary<string> {
  const names = Object.keys(options);
  const shorts = Object.values(options).flatMap((o) => (o.short ? [o.short] : []));
  return fc.oneof(
    fc.constantFrom(...names).map((n) => `--${n}`),
    fc
      .tuple(fc.constantFrom(...names), fc.constantFrom("", "x", "-x", "=", "a=b"))
      .map(([n, v]) => `--${n}=${v}`),
    fc.constantFrom(...shorts).map((s) => `-${s}`),
    fc
      .array(fc.constantFrom(...shorts, "z", "-"), { minLength: 2, maxLength: 4 })
      .map((l) => `-${l.join("")}`),
    fc.tuple(fc.constantFrom(...shorts), fc.constantFrom("1", "-1", "x=y")).map(([s, v]) => `-${s}${v}`),
    fc.constantFrom(
      "--",
      "-",
      "---",
      "--=",
      "--no-json",
      "--__proto__",
      "--constructor",
      "-=",
      "ls",
      "a:1.0.0",
      "-1",
      "",
    ),
    fc.string({ maxLength: 5 }),
  );
}

describe("skiff's argument parser (args.ts)", () => {
  it("parses as parseArgs does, on written cases", () => {
    const cases: string[][] = [
      [],
      ["ls"],
      ["-u", "unix:///x", "ls", "--json"],
      ["--url=tcp://h:1", "-t", "5", "ls"],
      ["-t"],
      ["-t", "-5"],
      ["-t-5"],
      ["--timeout", "--json"],
      ["--json=yes"],
      ["-jh"],
      ["-hu", "x"],
      ["-hux"],
      ["--nope"],
      ["-q"],
      ["a", "--", "-h", "--json"],
      ["-", "--"],
      ["--__proto__"],
      ["-e", "A=1", "--env", "B=2", "-eC=3"],
      ["--help", "--help"],
    ];
    for (const options of TABLES) for (const args of cases) assertSame(options, args);
  });

  it("parses as parseArgs does, on generated argument lists", () => {
    for (const options of TABLES) {
      fc.assert(
        fc.property(fc.array(argument(options), { maxLength: 6 }), (args) => assertSame(options, args)),
        { numRuns: 200 },
      );
    }
  });

  it("throws TypeErrors with parseArgs' codes, which the CLI reports as usage errors", () => {
    assert.throws(
      () => parseArguments(["--nope"], GLOBAL_OPTIONS),
      (e: unknown) => {
        assert.ok(e instanceof ParseArgsError && e instanceof TypeError);
        assert.equal(e.code, "ERR_PARSE_ARGS_UNKNOWN_OPTION");
        assert.equal(String(e), `TypeError [ERR_PARSE_ARGS_UNKNOWN_OPTION]: ${e.message}`);
        return true;
      },
    );
  });
});
