// The names inside and of an NPK, apart from the reader: code that only needs a name (the daemon's
// repository finding its files) does not load the NPK reader, its zip, YAML and signature code.
export const MANIFEST_NAME = "manifest.yaml";
export const SIGNATURE_NAME = "signature.yaml";
export const FS_IMG_NAME = "fs.img";
export const NPK_EXTENSION = ".npk";
