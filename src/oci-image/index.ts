// OCI images in: source readers (OCI layout, oci-archive, docker-archive, registry), a
// digest-verifying blob reader, the layer applier, and the config → NPK manifest mapping.
export { OciImageError, type OciImageErrorKind } from "./errors.js";
export { parseImageSource, parseRegistryRef, type ImageSourceRef, type RegistryRef } from "./reference.js";
export { DEFAULT_MAX_IMAGE_SIZE, unpackImage, type UnpackOptions } from "./image.js";
export { hostPlatform, parsePlatform, formatPlatform } from "./platform.js";
export type { Platform, ImageConfig } from "./documents.js";
export type { ResolvedImage } from "./resolve.js";
export type { RegistryCredentials } from "./registry.js";
export { packOciImage, type PackOciOptions, type PackOciResult } from "./to-npk.js";
