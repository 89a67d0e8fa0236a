// The NPK "meta" is the ZIP archive comment: a YAML mapping `version: <NPK format version>`.
// Northstar 0.9 writes its crate version (0.9.x) and accepts packages of the same minor line.
import semver from "semver";
import { parse as parseYaml } from "yaml";
import { NpkError, asNpkError } from "./errors.js";

/** The format version Skiff writes: the Northstar release line whose NPKs we produce. */
export const NPK_FORMAT_VERSION = "0.9.3";
/** Versions Skiff reads. */
export const NPK_FORMAT_RANGE = "~0.9.0";

export function encodeMeta(version = NPK_FORMAT_VERSION): Buffer {
  return Buffer.from(`version: ${version}\n`, "utf8");
}

/** Northstar writes `version: 0.9.x`; the YAML parser never sees more than this. */
export const MAX_META_SIZE = 256;

/** Parses the comment and returns the format version; throws NpkError("meta") if unsupported. */
export function parseMeta(comment: Buffer): string {
  if (comment.length > MAX_META_SIZE) {
    throw new NpkError(
      "meta",
      `ZIP comment (NPK meta) is ${comment.length} bytes, more than ${MAX_META_SIZE}`,
    );
  }
  let doc: unknown;
  try {
    doc = parseYaml(comment.toString("utf8"), { maxAliasCount: 0 });
  } catch (e) {
    throw asNpkError("meta", "ZIP comment (NPK meta) is not valid YAML", e);
  }
  const version =
    typeof doc === "object" && doc !== null ? (doc as Record<string, unknown>)["version"] : undefined;
  if (typeof version !== "string" || semver.valid(version) === null) {
    throw new NpkError("meta", "ZIP comment (NPK meta): version must be a semantic version string");
  }
  // Pre-releases of 0.9.x are still 0.9 packages.
  if (!semver.satisfies(version, NPK_FORMAT_RANGE, { includePrerelease: true })) {
    throw new NpkError("meta", `NPK format version ${version} is not supported (need ${NPK_FORMAT_RANGE})`);
  }
  return version;
}
