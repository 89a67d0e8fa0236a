/**
 * Durations in Skiff manifest extensions are strings of one or more `<integer><unit>` parts,
 * units `ms`, `s`, `m`, `h`: "500ms", "5s", "1m30s".
 */
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const PART = /(\d+)(ms|s|m|h)/y;

/** Parses a duration string to milliseconds. Throws a RangeError naming the bad text. */
export function parseDuration(text: string): number {
  if (text.length === 0) throw new RangeError("duration is empty");
  let total = 0;
  PART.lastIndex = 0;
  while (PART.lastIndex < text.length) {
    const start = PART.lastIndex;
    const match = PART.exec(text);
    if (match === null) {
      throw new RangeError(`invalid duration "${text}" at offset ${start}: expected <integer><ms|s|m|h>`);
    }
    total += Number(match[1]) * UNIT_MS[match[2]!]!;
  }
  if (!Number.isSafeInteger(total)) throw new RangeError(`duration "${text}" is too large`);
  return total;
}

/** True when `text` is a valid duration. */
export function isDuration(text: string): boolean {
  try {
    parseDuration(text);
    return true;
  } catch {
    return false;
  }
}
