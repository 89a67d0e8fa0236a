import { semverLib } from "./semver.js";

/**
 * Resource mounts name a version requirement in Rust semver syntax (what Northstar parses):
 * comma separated comparators, where a bare version like `1.2.3` means `^1.2.3`.
 * Returns the equivalent node-semver range, or undefined when the text is not a requirement.
 */
export function toSemverRange(requirement: string): string | undefined {
  const comparators = requirement.split(",").map((part) => part.trim());
  if (comparators.some((part) => part === "")) return undefined;
  const converted = comparators.map((part) => {
    const compact = part.replace(/^(>=|<=|>|<|=|~|\^)\s+/, "$1");
    return /^[0-9]/.test(compact) ? `^${compact}` : compact;
  });
  const range = converted.join(" ");
  return semverLib().validRange(range) === null ? undefined : range;
}

export function isValidVersionRequirement(requirement: string): boolean {
  return toSemverRange(requirement) !== undefined;
}

/** True when `version` (x.y.z) satisfies the requirement of a resource mount. */
export function satisfiesRequirement(version: string, requirement: string): boolean {
  const range = toSemverRange(requirement);
  return range !== undefined && semverLib().satisfies(version, range);
}
