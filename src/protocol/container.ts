/**
 * Container ids travel as "name:version" strings, exactly as in Northstar.
 * Names: 1..1024 characters of [0-9A-Za-z._-], and not `.` or `..`. Versions: semver.
 *
 * This is the one container name rule: the manifest check (install), the request decoder and
 * the CLI all use `nameProblem`. A name becomes a file name (`<data_dir>/<name>`, the package
 * file, the container's log directory), so besides Northstar's character set it must not be
 * `.` or `..`, which Northstar's rule lets through. Paths built from it still go through
 * common/paths.ts, which also refuses components longer than NAME_MAX.
 */

// semver's own `valid` (strict, not loose), as one expression: even `semver/functions/valid` loads
// eight CommonJS modules into every `skiff` command (docs/footprint.md). The same rule:
// at most 256 characters, surrounding white space and a leading `v` ignored, MAJOR.MINOR.PATCH
// without leading zeros, dot-separated pre-release identifiers (numeric ones without leading
// zeros) and build identifiers; each of MAJOR, MINOR, PATCH at most Number.MAX_SAFE_INTEGER.
// test/unit/protocol/version-rule.test.ts checks it against semver.valid.
const VERSION_MAX = 256;
const NUMERIC = "0|[1-9]\\d*";
const PRERELEASE_ID = `(?:${NUMERIC}|\\d*[a-zA-Z-][a-zA-Z0-9-]*)`;
const VERSION_RE = new RegExp(
  `^v?(${NUMERIC})\\.(${NUMERIC})\\.(${NUMERIC})` +
    `(?:-${PRERELEASE_ID}(?:\\.${PRERELEASE_ID})*)?(?:\\+[a-zA-Z0-9-]+(?:\\.[a-zA-Z0-9-]+)*)?$`,
);

/** True when `version` is a version as semver's `valid` accepts it. */
export function isValidVersion(version: string): boolean {
  if (version.length > VERSION_MAX) return false;
  const m = VERSION_RE.exec(version.trim());
  return m !== null && m.slice(1, 4).every((n) => Number(n) <= Number.MAX_SAFE_INTEGER);
}

export type ContainerId = string;

const NAME_MAX = 1024;
const NAME_RE = /^[0-9A-Za-z._-]+$/;

/** Returns why `name` is not a valid container name, or undefined when it is. */
export function nameProblem(name: string): string | undefined {
  if (name.length === 0) return "container name is empty";
  if (name.length > NAME_MAX) return `container name is longer than ${NAME_MAX} characters`;
  if (!NAME_RE.test(name)) {
    const bad = [...name].find((c) => !NAME_RE.test(c));
    return `invalid character ${JSON.stringify(bad)} in container name`;
  }
  if (name === "." || name === "..") return `container name must not be "${name}"`;
  return undefined;
}

export interface ParsedContainerId {
  name: string;
  version: string;
}

/**
 * Where the name ends in an id. The name's character set has no ":", so the first and the last
 * colon of a valid id are the same one; the last is taken so that a bad id fails in the version.
 */
const separator = (id: ContainerId): number => id.lastIndexOf(":");

/** Returns why `id` is not a valid "name:version", or undefined when it is. */
export function containerIdProblem(id: string): string | undefined {
  const colon = separator(id);
  if (colon < 0) return `container ${JSON.stringify(id)} is not of the form name:version`;
  const problem = nameProblem(id.slice(0, colon));
  if (problem) return problem;
  const version = id.slice(colon + 1);
  if (!isValidVersion(version)) return `invalid version ${JSON.stringify(version)}`;
  return undefined;
}

/** Checks `id` and returns its name and version; throws a TypeError naming the problem. */
export function parseContainerId(id: string): ParsedContainerId {
  const problem = containerIdProblem(id);
  if (problem) throw new TypeError(problem);
  return { name: nameOf(id), version: versionOf(id) };
}

/**
 * The name part of an id that has been checked already (every id past the decoder or the
 * repository has been). The one place that knows where a name ends in an id.
 */
export function nameOf(id: ContainerId): string {
  return id.slice(0, separator(id));
}

/** The version part of an id that has been checked already; see `nameOf`. */
export function versionOf(id: ContainerId): string {
  return id.slice(separator(id) + 1);
}

export function formatContainerId(name: string, version: string): ContainerId {
  return `${name}:${version}`;
}
