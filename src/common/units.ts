/**
 * Human-friendly quantities, one grammar for manifests and skiffd's configuration.
 *
 * Durations: one or more `<integer><unit>` parts without spaces, units `ms`, `s`, `m`, `h`
 * ("500ms", "5s", "1m30s"). The configuration also takes a bare integer (string or TOML number)
 * as seconds; manifests do not, as a bare number there is more likely a mistake than a choice.
 *
 * Sizes: an integer of bytes, optionally followed (spaces allowed) by a unit, case-insensitive:
 * `B`; decimal `kB`/`MB`/`GB`/`TB`/`PB`/`EB` (×1000); binary `KiB`/`MiB`/... (×1024). A prefix
 * letter alone (`K`, `M`, `G`, ...) is the one place where readings differ, so every caller names
 * its reading (`PrefixLetter`): manifests read it as decimal, as Northstar's tmpfs sizes do
 * (docs/manifest.md), while skiffd's configuration and the CLI read it as binary, so `"1M"` there
 * is 1048576 bytes and `"100MB"` is 100000000 (docs/cgroups.md, docs/oci-images.md).
 *
 * Fractions ("1.5s", "1.5M") are refused everywhere: both quantities are whole numbers, and a
 * rounding rule would be one more thing to document and get wrong.
 */

const DURATION_UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const DURATION_PART = /(\d+)(ms|s|m|h)/y;

export interface DurationOptions {
  /** Read a bare integer ("5") as seconds. Off for manifests. */
  bareSeconds?: boolean;
}

/** Parses a duration to milliseconds. Throws a RangeError naming the bad text. */
export function parseDuration(text: string, options: DurationOptions = {}): number {
  if (text.length === 0) throw new RangeError("duration is empty");
  if (options.bareSeconds === true && /^\d+$/.test(text)) return checkedTotal(Number(text) * 1000, text);
  let total = 0;
  DURATION_PART.lastIndex = 0;
  while (DURATION_PART.lastIndex < text.length) {
    const start = DURATION_PART.lastIndex;
    const match = DURATION_PART.exec(text);
    if (match === null) {
      throw new RangeError(`invalid duration "${text}" at offset ${start}: expected <integer><ms|s|m|h>`);
    }
    total += Number(match[1]) * DURATION_UNIT_MS[match[2]!]!;
  }
  return checkedTotal(total, text);
}

/** True when `text` is a valid manifest duration. */
export function isDuration(text: string): boolean {
  try {
    parseDuration(text);
    return true;
  } catch {
    return false;
  }
}

const PREFIX_POWER: Record<string, number> = { "": 0, k: 1, m: 2, g: 3, t: 4, p: 5, e: 6 };

/**
 * How a prefix letter written without `i` or `B` ("64K") is read: `decimal` (×1000) in manifests,
 * as Northstar reads tmpfs sizes; `binary` (×1024) in skiffd's configuration and on the CLI.
 */
export type PrefixLetter = "decimal" | "binary";

/** Parses a byte size, a lone prefix letter read as `letter` says. Throws a RangeError naming the bad text. */
export function parseByteSize(text: string, letter: PrefixLetter): number {
  const match = /^\s*(\d+)\s*([kmgtpe]?)(i?)(b?)\s*$/i.exec(text);
  if (match === null) throw new RangeError(`invalid size "${text}": expected e.g. 4096, 10MB or 64KiB`);
  const [, digits, prefix, binary, bytes] = match as unknown as [string, string, string, string, string];
  if (binary !== "" && (prefix === "" || bytes === "")) {
    throw new RangeError(`invalid size "${text}": binary units are written KiB, MiB, ...`);
  }
  const letterOnly = prefix !== "" && binary === "" && bytes === "";
  const base = binary !== "" || (letterOnly && letter === "binary") ? 1024 : 1000;
  return checkedTotal(Number(digits) * base ** PREFIX_POWER[prefix.toLowerCase()]!, text);
}

/**
 * skiffd configuration duration: a string as above or a non-negative integer of seconds.
 * Returns undefined when the value is not one (the caller names the key).
 */
export function parseConfigDuration(value: string | number): number | undefined {
  const text = typeof value === "number" ? integerText(value) : value;
  return text === undefined ? undefined : orUndefined(() => parseDuration(text, { bareSeconds: true }));
}

/**
 * skiffd configuration size: a string as above (prefix letters binary) or a non-negative
 * integer of bytes. Returns undefined when the value is not one.
 */
export function parseConfigSize(value: string | number): number | undefined {
  const text = typeof value === "number" ? integerText(value) : value;
  return text === undefined ? undefined : orUndefined(() => parseByteSize(text, "binary"));
}

function integerText(value: number): string | undefined {
  return Number.isSafeInteger(value) && value >= 0 ? String(value) : undefined;
}

function orUndefined(parse: () => number): number | undefined {
  try {
    return parse();
  } catch {
    return undefined;
  }
}

function checkedTotal(total: number, text: string): number {
  if (!Number.isSafeInteger(total)) throw new RangeError(`"${text}" is too large`);
  return total;
}
