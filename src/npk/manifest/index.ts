export * from "./types.js";
export { ManifestError, type ManifestIssue } from "./errors.js";
export { parseManifest, manifestFormatFromPath, manifestToYaml, type ManifestFormat } from "./parse.js";
export { decodeManifest } from "./decode.js";
export { validateManifest, isValidContainerName, RESERVED_ENV_VARIABLES } from "./validate.js";
export { parseDuration, isDuration } from "./duration.js";
export { satisfiesRequirement, toSemverRange, isValidVersionRequirement } from "./version-req.js";
