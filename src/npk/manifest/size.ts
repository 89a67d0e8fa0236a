/**
 * Manifest byte sizes (tmpfs): the shared grammar in src/common/units.ts with Northstar's reading
 * of a lone prefix letter as decimal ("10M" = 10000000; "10MiB" for 1024-based).
 */
import { parseByteSize as parseSharedByteSize } from "../../common/units.js";

/** Parses a manifest size to bytes. Throws a RangeError naming the bad text. */
export function parseByteSize(text: string): number {
  return parseSharedByteSize(text, { letterBase: 1000 });
}
