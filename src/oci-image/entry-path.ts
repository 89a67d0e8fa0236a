// Names in layer tars and what they mean: a path to write, a whiteout, or an opaque marker.
// Pure; the layer applier (apply.ts) does the file system work. Every name from a tar goes
// through `parseEntryName` and nothing else decides where an entry lands.
import { OciImageError } from "./errors.js";

const MAX_PATH_BYTES = 4096;
const MAX_COMPONENT_BYTES = 255;
export const WHITEOUT_PREFIX = ".wh.";
export const OPAQUE_MARKER = ".wh..wh..opq";

/**
 * A tar entry name as path components below the image root. Leading `./` and `/` forms are how
 * tools write relative names (`./bin/sh`); a leading `/` is refused, as are `..` components, NUL
 * and over-long names. `.` components and repeated or trailing slashes are dropped. The root
 * itself is the empty list.
 */
export function parseEntryName(name: string, what: string): string[] {
  if (name.includes("\0")) throw new OciImageError("layer", `${what}: entry name contains a NUL byte`);
  if (Buffer.byteLength(name) > MAX_PATH_BYTES) {
    throw new OciImageError("layer", `${what}: entry name longer than ${MAX_PATH_BYTES} bytes`);
  }
  if (name.startsWith("/"))
    throw new OciImageError("layer", `${what}: absolute entry name "${name}" refused`);
  const parts = name.split("/").filter((part) => part !== "" && part !== ".");
  for (const part of parts) {
    if (part === "..")
      throw new OciImageError("layer", `${what}: entry name "${name}" escapes the image root (..)`);
    if (Buffer.byteLength(part) > MAX_COMPONENT_BYTES) {
      throw new OciImageError(
        "layer",
        `${what}: entry name component longer than ${MAX_COMPONENT_BYTES} bytes`,
      );
    }
  }
  return parts;
}

export type EntryMeaning =
  /** Create or replace the file at `path`. */
  | { kind: "path"; path: string[] }
  /** Remove `path` from the lower layers. */
  | { kind: "whiteout"; path: string[] }
  /** Remove everything the lower layers have below `dir` (the directory itself stays). */
  | { kind: "opaque"; dir: string[] };

/** What an entry means under the OCI whiteout rules (AUFS-style `.wh.` names). */
export function classifyEntry(parts: string[], what: string): EntryMeaning {
  const base = parts[parts.length - 1];
  if (base === undefined || !base.startsWith(WHITEOUT_PREFIX)) return { kind: "path", path: parts };
  const dir = parts.slice(0, -1);
  if (base === OPAQUE_MARKER) return { kind: "opaque", dir };
  const target = base.slice(WHITEOUT_PREFIX.length);
  if (target === "" || target === "." || target === ".." || target.startsWith(WHITEOUT_PREFIX)) {
    throw new OciImageError("layer", `${what}: invalid whiteout "${parts.join("/")}"`);
  }
  return { kind: "whiteout", path: [...dir, target] };
}

/**
 * What one layer has written so far. Whiteouts only hide what lower layers have: an entry the
 * same layer wrote before the marker stays (OCI image spec, "Whiteouts").
 */
export class LayerWrites {
  private readonly written = new Set<string>();
  /** Written paths and all their ancestors, so opaque markers can keep them in O(1). */
  private readonly touched = new Set<string>();

  add(path: readonly string[]): void {
    this.written.add(path.join("/"));
    for (let n = 1; n <= path.length; n++) this.touched.add(path.slice(0, n).join("/"));
  }

  /** True when this layer wrote `path` itself (a whiteout of it is then ignored). */
  wrote(path: readonly string[]): boolean {
    return this.written.has(path.join("/"));
  }

  /**
   * Whether `path`, below a directory under an opaque marker, stays: only when this layer wrote
   * it or something below it. The applier recurses into kept directories with the same rule, so
   * lower content is hidden at every depth while what this layer wrote before the marker stays.
   */
  keepsUnderOpaque(path: readonly string[]): boolean {
    return this.touched.has(path.join("/"));
  }
}
