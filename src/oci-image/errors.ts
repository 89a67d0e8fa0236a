// Every failure while reading, verifying or unpacking an OCI image surfaces as an OciImageError,
// so callers (the CLI now, an image service later) map `kind` without parsing messages.

export type OciImageErrorKind =
  | "usage" // the caller passed an unusable source or inconsistent options
  | "source" // the source cannot be opened or read (missing file, bad archive, connection refused)
  | "format" // a JSON document or archive is malformed or uses something this reader does not support
  | "digest" // a blob's content does not match its digest, or its length its declared size
  | "size" // the image exceeds a limit (--max-image-size, entry counts, document sizes)
  | "platform" // no manifest for this host's architecture and OS
  | "layer" // a layer tar entry is refused (path escape, link outside the tree, bad type)
  | "config" // the image config cannot become a manifest (no entrypoint, root user, unknown user)
  | "registry"; // the registry answered with an error or an unusable authentication challenge

export class OciImageError extends Error {
  override name = "OciImageError";
  readonly kind: OciImageErrorKind;

  constructor(kind: OciImageErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.kind = kind;
  }
}

/** Wraps a non-OciImageError (an errno error, a fetch failure) into an OciImageError of `kind`. */
export function asOciImageError(kind: OciImageErrorKind, context: string, error: unknown): OciImageError {
  if (error instanceof OciImageError) return error;
  const detail = error instanceof Error ? error.message : String(error);
  return new OciImageError(kind, `${context}: ${detail}`, { cause: error });
}
