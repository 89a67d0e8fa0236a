// Content digests and the stream that checks them. Every blob read from any source passes
// through a DigestVerifier: it hashes while streaming, fails as soon as more bytes arrive than
// the descriptor declared (before they reach the disk), and fails at the end on a short blob or a
// digest mismatch. Consumers must treat everything they wrote from a failed stream as garbage.
import { createHash, type Hash } from "node:crypto";
import { Transform, type Readable, type TransformCallback } from "node:stream";
import { pipeline } from "node:stream/promises";
import { OciImageError } from "./errors.js";

/** A `sha256:<64 lowercase hex>` digest, the only algorithm registries and tools produce. */
export type Digest = `sha256:${string}`;

const SHA256 = /^sha256:[a-f0-9]{64}$/;

export function isDigest(text: unknown): text is Digest {
  return typeof text === "string" && SHA256.test(text);
}

/** Parses a digest; throws OciImageError("format") naming `context`. */
export function parseDigest(text: unknown, context: string): Digest {
  if (isDigest(text)) return text;
  const shown = typeof text === "string" ? `"${text.slice(0, 80)}"` : typeof text;
  const hint =
    typeof text === "string" && /^[a-z0-9]+:/.test(text) && !text.startsWith("sha256:")
      ? " (only sha256 is supported)"
      : "";
  throw new OciImageError("format", `${context}: invalid digest ${shown}${hint}`);
}

/** The hex part of a digest (the blob's file name in an OCI layout). */
export function digestHex(digest: Digest): string {
  return digest.slice("sha256:".length);
}

export function sha256Digest(data: Buffer | string): Digest {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

export interface VerifyOptions {
  /** What is being read, for messages, e.g. "layer sha256:ab12…". */
  what: string;
  /** Expected digest; undefined only counts bytes (the caller verifies some other way). */
  digest?: Digest;
  /** Exact expected length, when the descriptor declares it. */
  size?: number;
  /** Upper bound on the length when the exact size is unknown (uncompressed layers). */
  maxBytes?: number;
  /** Called with every chunk length, before the chunk is passed on. */
  onBytes?: (n: number) => void;
}

/** A pass-through Transform that enforces VerifyOptions; see the file comment. */
export class DigestVerifier extends Transform {
  private readonly hash: Hash | undefined;
  private length = 0;

  constructor(private readonly opts: VerifyOptions) {
    super();
    this.hash = opts.digest === undefined ? undefined : createHash("sha256");
  }

  get bytes(): number {
    return this.length;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.length += chunk.length;
    if (this.opts.size !== undefined && this.length > this.opts.size) {
      callback(
        new OciImageError(
          "digest",
          `${this.opts.what}: longer than its declared size of ${this.opts.size} bytes`,
        ),
      );
      return;
    }
    if (this.opts.maxBytes !== undefined && this.length > this.opts.maxBytes) {
      callback(new OciImageError("size", `${this.opts.what}: more than ${this.opts.maxBytes} bytes`));
      return;
    }
    try {
      this.opts.onBytes?.(chunk.length);
    } catch (e) {
      callback(e as Error);
      return;
    }
    this.hash?.update(chunk);
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    if (this.opts.size !== undefined && this.length !== this.opts.size) {
      callback(
        new OciImageError(
          "digest",
          `${this.opts.what}: ${this.length} bytes, but its descriptor declares ${this.opts.size}`,
        ),
      );
      return;
    }
    if (this.hash !== undefined && this.opts.digest !== undefined) {
      const actual = `sha256:${this.hash.digest("hex")}`;
      if (actual !== this.opts.digest) {
        callback(
          new OciImageError(
            "digest",
            `${this.opts.what}: digest mismatch: content is ${actual}, expected ${this.opts.digest}`,
          ),
        );
        return;
      }
    }
    callback();
  }
}

/** Reads a whole (small) stream through a DigestVerifier into memory; `maxBytes` is required. */
export async function readVerified(
  stream: Readable,
  opts: VerifyOptions & { maxBytes: number },
): Promise<Buffer> {
  if (opts.size !== undefined && opts.size > opts.maxBytes) {
    throw new OciImageError(
      "size",
      `${opts.what}: ${opts.size} bytes, more than the limit of ${opts.maxBytes}`,
    );
  }
  const chunks: Buffer[] = [];
  await pipeline(stream, new DigestVerifier(opts), async (verified: AsyncIterable<Buffer>) => {
    for await (const chunk of verified) chunks.push(chunk);
  });
  return Buffer.concat(chunks);
}
