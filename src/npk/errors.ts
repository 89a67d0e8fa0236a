// Every failure while reading, verifying, packing or unpacking an NPK surfaces as an NpkError
// so callers (daemon, CLI) can map `kind` to a console error without parsing messages.

export type NpkErrorKind =
  | "io" // the file cannot be opened or read
  | "zip" // the container ZIP is malformed or uses features NPKs must not use
  | "meta" // the ZIP comment (format version) is missing, malformed or unsupported
  | "manifest" // manifest.yaml is missing or invalid
  | "signature" // signature.yaml is missing, malformed, or the signature does not verify
  | "hash" // a hash listed in signature.yaml does not match the package content
  | "verity" // the dm-verity superblock or hash tree is invalid or does not match fs.img
  | "fs" // fs.img is missing, misaligned or not a known file system image
  | "key" // a key file cannot be read or has the wrong size
  | "tool" // an external tool (mksquashfs, mkfs.erofs, unsquashfs, ...) failed
  | "usage"; // the caller passed inconsistent options

export class NpkError extends Error {
  override name = "NpkError";
  readonly kind: NpkErrorKind;

  constructor(kind: NpkErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.kind = kind;
  }
}

/** Wraps a non-NpkError (e.g. an errno error from node:fs) into an NpkError of `kind`. */
export function asNpkError(kind: NpkErrorKind, context: string, error: unknown): NpkError {
  if (error instanceof NpkError) return error;
  const detail = error instanceof Error ? error.message : String(error);
  return new NpkError(kind, `${context}: ${detail}`, { cause: error });
}
