// The NPK "meta" is the ZIP archive comment: a YAML mapping `version: <NPK format version>`.
// Northstar writes its crate version (0.9.2 for the 0.9.2 release) and reads any meta whose
// major.minor.patch is at least its own major.minor (`>=0.9`): it parses the version with Rust's
// semver, keeps only major.minor.patch (pre-release and build metadata are dropped) and matches
// that against `>=0.9`. So 0.9.0, 0.9.3-pre, 0.10.0 and 1.2.0 are read; 0.8.9 is not.
import semver from "semver";
import { yamlLib } from "./yaml-lib.js";
import { NpkError, asNpkError } from "./errors.js";

/** The format version Skiff writes: what Northstar 0.9.2, whose NPKs we produce, writes. */
export const NPK_FORMAT_VERSION = "0.9.2";
/** Versions Skiff reads, compared on major.minor.patch only (see above). */
export const NPK_FORMAT_RANGE = ">=0.9";

export function encodeMeta(version = NPK_FORMAT_VERSION): Buffer {
  return Buffer.from(`version: ${version}\n`, "utf8");
}

/** Northstar writes `version: 0.9.x`; the YAML parser never sees more than this. */
export const MAX_META_SIZE = 256;

/**
 * `version: X` and a newline, where X is a plain YAML scalar that YAML reads as this very string:
 * a semantic version (digits, dots, a pre-release or build part). What semver.parse refuses is
 * refused below either way.
 */
const EXACT_META = /^version: ([0-9]+\.[0-9]+\.[0-9]+(?:[-+][0-9A-Za-z.+-]*)?)\n?$/;

/** Parses the comment and returns the format version; throws NpkError("meta") if unsupported. */
export function parseMeta(comment: Buffer): string {
  if (comment.length > MAX_META_SIZE) {
    throw new NpkError(
      "meta",
      `ZIP comment (NPK meta) is ${comment.length} bytes, more than ${MAX_META_SIZE}`,
    );
  }
  const text = comment.toString("utf8");
  // The form Northstar and Skiff write, `version: <semver>` on one line, is read without the YAML
  // parser (the start-up scan reads one meta per installed package); any other text is YAML's.
  const exact = EXACT_META.exec(text)?.[1];
  let version: unknown = exact;
  if (exact === undefined) {
    let doc: unknown;
    try {
      doc = yamlLib().parse(text, { maxAliasCount: 0 });
    } catch (e) {
      throw asNpkError("meta", "ZIP comment (NPK meta) is not valid YAML", e);
    }
    version =
      typeof doc === "object" && doc !== null ? (doc as Record<string, unknown>)["version"] : undefined;
  }
  // Rust's semver takes no leading "v" or "=", which node-semver would strip.
  const parsed = typeof version === "string" && /^[0-9]/.test(version) ? semver.parse(version) : null;
  if (typeof version !== "string" || parsed === null) {
    throw new NpkError("meta", "ZIP comment (NPK meta): version must be a semantic version string");
  }
  const release = `${parsed.major}.${parsed.minor}.${parsed.patch}`;
  if (!semver.satisfies(release, NPK_FORMAT_RANGE)) {
    throw new NpkError("meta", `NPK format version ${version} is not supported (need ${NPK_FORMAT_RANGE})`);
  }
  return version;
}
