/**
 * Byte sizes for tmpfs mounts: a number of bytes, or a string `<integer>[ ]<unit>` with decimal units
 * (k/kB = 1000, M/MB, G/GB, T/TB, P/PB, E/EB) or binary units (KiB = 1024, MiB, ...), as Northstar accepts.
 */
const POWERS: Record<string, number> = { "": 0, k: 1, m: 2, g: 3, t: 4, p: 5, e: 6 };

export function parseByteSize(text: string): number {
  const match = /^\s*(\d+)\s*([kmgtpe]?)(i?)(b?)\s*$/i.exec(text);
  if (match === null) throw new RangeError(`invalid size "${text}": expected e.g. 4096, 10MB or 64KiB`);
  const [, digits, prefix, binary, bytes] = match as unknown as [string, string, string, string, string];
  if (binary !== "" && (prefix === "" || bytes === "")) {
    throw new RangeError(`invalid size "${text}": binary units are written KiB, MiB, ...`);
  }
  const base = binary === "" ? 1000 : 1024;
  const size = Number(digits) * base ** POWERS[prefix.toLowerCase()]!;
  if (!Number.isSafeInteger(size)) throw new RangeError(`size "${text}" is too large`);
  return size;
}
