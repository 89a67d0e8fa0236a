// Property-based tests of the manifest parser: any text, in any format, parses or throws
// ManifestError (never another error, never a hang); structured near-valid manifests do the
// same, and every manifest that parses reads back unchanged from its YAML and JSON forms.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import YAML from "yaml";
import { yamlNestingBound } from "../../../src/npk/manifest/parse.js";
import {
  ManifestError,
  manifestToYaml,
  parseManifest,
  type Manifest,
  type ManifestFormat,
} from "../../../src/npk/manifest/index.js";

const RUNS = { numRuns: 200 };

function parsesOrManifestError(text: string, format: ManifestFormat = "yaml"): Manifest | undefined {
  try {
    return parseManifest(text, format);
  } catch (e) {
    assert.ok(
      e instanceof ManifestError,
      `parseManifest(${JSON.stringify(text).slice(0, 300)}, ${format}) threw ${String(e)}`,
    );
    return undefined;
  }
}

/** Strings that are likely to mean something to YAML. */
const yamlish = fc
  .array(
    fc.oneof(
      fc.constantFrom(
        ...[
          "\n",
          "  ",
          "- ",
          ": ",
          "? ",
          "[",
          "]",
          "{",
          "}",
          ",",
          "&a ",
          "*a",
          "!tag ",
          "!!str ",
          "|",
          ">",
          "#",
        ],
        ...['"', "'", "---\n", "...\n", "<<: *a", "name: x", "env:", "uid: 1", "~", "null", "1e9", "0x1f"],
      ),
      fc.string({ maxLength: 6 }),
    ),
    { maxLength: 60 },
  )
  .map((parts) => parts.join(""));

const envName = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,10}$/);
const scalarText = fc.oneof(
  fc.stringMatching(/^[a-z0-9/._-]{1,12}$/),
  fc.constantFrom("4", "1.0", "true", "null", "0,1", "~", "''", "a: b", "- x", "[1]", "*a", "&a x"),
);

/** Mostly `good`, sometimes `bad`: most generated manifests must still be valid. */
const mostly = <T>(good: fc.Arbitrary<T>, bad: fc.Arbitrary<T>) =>
  fc.oneof({ arbitrary: good, weight: 8 }, { arbitrary: bad, weight: 1 });
const validText = fc.stringMatching(/^[a-z0-9/._-]{1,12}$/);

/** A manifest built from mostly valid parts with a few wrong ones, written as YAML. */
const nearValidYaml = fc
  .record({
    name: mostly(fc.stringMatching(/^[a-z][a-z0-9-]{0,10}$/), scalarText),
    version: mostly(fc.constantFrom("0.0.1", "1.2.3", "1.2.3-rc.1+b"), fc.constantFrom("1.2", "x")),
    init: mostly(fc.constant("/bin/sh"), fc.constantFrom(undefined, "bin/sh", "")),
    uid: mostly(fc.integer({ min: 1, max: 65_535 }), fc.integer({ min: -1, max: 70_000 })),
    gid: mostly(fc.integer({ min: 1, max: 65_535 }), fc.integer({ min: -1, max: 70_000 })),
    env: fc.option(
      mostly(
        fc.dictionary(envName, validText, { maxKeys: 8 }),
        fc.dictionary(envName, scalarText, { maxKeys: 70 }),
      ),
      { nil: undefined },
    ),
    args: fc.option(mostly(fc.array(validText, { maxLength: 4 }), fc.array(scalarText, { maxLength: 4 })), {
      nil: undefined,
    }),
    mounts: fc.option(
      fc.dictionary(
        mostly(fc.constantFrom("/data", "/tmp", "/lib", "/dev"), fc.constantFrom("relative", "/a/../b", "/")),
        mostly(
          fc.constantFrom(
            "!persist",
            "!tmpfs { size: 10M }",
            "!bind { host: /lib, options: rec }",
            "{ type: dev }",
            "!resource { name: r, version: '>=1', dir: / }",
          ),
          fc.constantFrom("{ type: proc, extra: 1 }", "{ type: bogus }", "[1, 2]"),
        ),
        { maxKeys: 4 },
      ),
      { nil: undefined },
    ),
    extra: mostly(fc.constant(undefined), fc.tuple(scalarText, scalarText)),
    custom: fc.option(fc.jsonValue({ maxDepth: 4 }), { nil: undefined }),
  })
  .map((m) => {
    const lines = [`name: ${m.name}`, `version: ${m.version}`, `uid: ${m.uid}`, `gid: ${m.gid}`];
    if (m.init !== undefined) lines.push(`init: ${JSON.stringify(m.init)}`);
    if (m.env !== undefined) lines.push("env:", ...Object.entries(m.env).map(([k, v]) => `  ${k}: ${v}`));
    if (m.args !== undefined) lines.push("args:", ...m.args.map((a) => `  - ${a}`));
    if (m.mounts !== undefined)
      lines.push("mounts:", ...Object.entries(m.mounts).map(([k, v]) => `  ${k}: ${v}`));
    if (m.extra !== undefined) lines.push(`${m.extra[0]}: ${m.extra[1]}`);
    if (m.custom !== undefined) lines.push(`custom: ${JSON.stringify(m.custom)}`);
    return lines.join("\n") + "\n";
  });

/** The Manifest as plain JSON data (fast-check's custom values may have null prototypes). */
const plain = (m: Manifest): unknown => JSON.parse(JSON.stringify(m));

function assertRoundTrips(m: Manifest): void {
  assert.deepEqual(plain(parseManifest(manifestToYaml(m))), plain(m));
  assert.deepEqual(plain(parseManifest(JSON.stringify(m), "json")), plain(m));
}

/** Nesting depth of a JSON value, the value itself being level 1 (as MANIFEST_LIMITS counts). */
function depthOf(value: unknown): number {
  if (value === null || typeof value !== "object") return 1;
  const children = Object.values(value as Record<string, unknown>);
  return 1 + Math.max(0, ...children.map(depthOf));
}

describe("manifest parser properties", () => {
  // The bound is about the parser's recursion, so the text is written without aliases.
  it("bounds the nesting depth of YAML from above, in block and flow style, before parsing", () => {
    const nested = fc.letrec((tie) => ({
      value: fc.oneof(
        { depthSize: "small", withCrossShrink: true },
        fc.oneof(fc.string({ maxLength: 8 }), fc.integer(), fc.boolean(), fc.constant(null)),
        fc.array(tie("value"), { maxLength: 3 }),
        fc.dictionary(fc.string({ maxLength: 6 }), tie("value"), { maxKeys: 3 }),
      ),
    })).value;
    fc.assert(
      fc.property(nested, fc.constantFrom(0, 1, 2), (value, style) => {
        const text =
          style === 0
            ? YAML.stringify(value)
            : style === 1
              ? YAML.stringify(value, { collectionStyle: "flow" })
              : YAML.stringify({ a: { b: [value, { c: value }] } }, { aliasDuplicateObjects: false });
        const actual = depthOf(YAML.parse(text));
        const bound = yamlNestingBound(text);
        assert.ok(bound >= actual, `bound ${bound} < depth ${actual} of:\n${text}`);
      }),
      { numRuns: 300 },
    );
  });

  it("parses any text, as YAML, JSON or TOML, or throws ManifestError", () => {
    const format = fc.constantFrom<ManifestFormat>("yaml", "json", "toml");
    fc.assert(
      fc.property(
        fc.string({ unit: "binary", maxLength: 300 }),
        format,
        (s, f) => void parsesOrManifestError(s, f),
      ),
      RUNS,
    );
    fc.assert(
      fc.property(yamlish, (s) => void parsesOrManifestError(s)),
      RUNS,
    );
    fc.assert(
      fc.property(fc.json(), (s) => void parsesOrManifestError(s, "json")),
      RUNS,
    );
  });

  it("parses near-valid manifests or throws ManifestError; what parses round-trips", () => {
    let parsed = 0;
    fc.assert(
      fc.property(nearValidYaml, (text) => {
        const m = parsesOrManifestError(text);
        if (m === undefined) return;
        parsed++;
        assertRoundTrips(m);
      }),
      { numRuns: 400 },
    );
    // The generator must reach valid manifests too, or the round trip is never checked.
    assert.ok(parsed > 20, `only ${parsed} of 400 generated manifests were valid`);
  });

  it("refuses hostile shapes by a limit, quickly and with ManifestError", () => {
    const head = "name: x\nversion: 0.0.1\ninit: /bin/sh\nuid: 1\ngid: 1\n";
    const bomb = (levels: number) => {
      let text = head + "custom:\n  l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n";
      for (let i = 1; i <= levels; i++)
        text += `  l${i}: &l${i} [${Array(10)
          .fill(`*l${i - 1}`)
          .join(", ")}]\n`;
      return text;
    };
    const cases: [string, ManifestFormat, RegExp][] = [
      [head + "custom: " + "[".repeat(20_000) + "]".repeat(20_000), "yaml", /nested deeper/],
      [head + "custom:\n" + "  - ".repeat(1) + "- ".repeat(5_000) + "x\n", "yaml", /nested deeper/],
      [head + "custom:\n  " + "? ".repeat(5_000) + "x\n", "yaml", /nested deeper/],
      [bomb(9), "yaml", /more than 2048 values/],
      [
        head + "env:\n" + Array.from({ length: 7000 }, (_, i) => `  K${i}: v\n`).join(""),
        "yaml",
        /larger than 65536 bytes/,
      ],
      [
        head + "env:\n" + Array.from({ length: 1000 }, (_, i) => `  K${i}: v\n`).join(""),
        "yaml",
        /at most 64 entries/,
      ],
      [
        `{"custom": ${"[".repeat(50_000)}${"]".repeat(50_000)}}`,
        "json",
        /larger than 65536 bytes|nested deeper/,
      ],
      [`{"custom": ${"[".repeat(1000)}${"]".repeat(1000)}}`, "json", /nested deeper/],
      [`{"custom": [${Array(5000).fill("1").join(",")}]}`, "json", /more than 2048 values/],
      ["a = " + "[".repeat(1000) + "]".repeat(1000), "toml", /nested deeper|syntax/],
    ];
    for (const [text, format, reason] of cases) {
      assert.throws(
        () => parseManifest(text, format),
        (e: unknown) => e instanceof ManifestError && e.errors.some((x) => reason.test(x.reason)),
        `${text.slice(0, 60)}: expected ${String(reason)}`,
      );
    }
  });

  it("keeps aliases that stay within the limits (serde_yaml reads them too)", () => {
    const text =
      "name: x\nversion: 0.0.1\ninit: /bin/sh\nuid: 1\ngid: 1\nargs: &a [one, two]\ncustom: { a: *a, b: *a }\n";
    const m = parseManifest(text);
    assert.deepEqual(m.args, ["one", "two"]);
    assert.deepEqual(m.custom, { a: ["one", "two"], b: ["one", "two"] });
    assertRoundTrips(m);
  });
});
