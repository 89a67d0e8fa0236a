// Public API of the NPK package format (the manifest lives in ./manifest/).
export { NpkError, type NpkErrorKind } from "./errors.js";
export {
  FS_IMG_ALIGNMENT,
  FS_IMG_NAME,
  MANIFEST_NAME,
  NPK_EXTENSION,
  SIGNATURE_NAME,
  detectFsType,
  openNpk,
  verifyFsImage,
  type FsType,
  type Npk,
  type NpkFsImage,
  type NpkVerity,
  type OpenNpkOptions,
} from "./npk.js";
export { NPK_FORMAT_RANGE, NPK_FORMAT_VERSION } from "./meta.js";
export { COMPRESSIONS, defaultCompression, type Compression, type FsKind } from "./mkfs.js";
export { cloneManifests, loadManifestFile, pack, type PackOptions, type PackProgress } from "./pack.js";
export {
  inspectFull,
  inspectShort,
  unpack,
  type FullInspection,
  type ShortInspection,
  type UnpackOptions,
} from "./unpack.js";
export {
  genKey,
  publicKeyFromRaw,
  readPrivateKey,
  readPublicKey,
  toPublicKey,
  type NpkHashes,
} from "./signature.js";
export {
  VERITY_BLOCK_SIZE,
  VERITY_DIGEST_SIZE,
  VERITY_SALT_SIZE,
  appendVerity,
  buildVerityTree,
  verifyVerity,
} from "./verity.js";
