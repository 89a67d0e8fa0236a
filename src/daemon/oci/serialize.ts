import type { OciSpec } from "./types.js";

/**
 * Writes config.json. bigint values (rlimits, seccomp arguments) are written as exact JSON integers,
 * which JSON.stringify cannot do: RLIM_INFINITY is 2^64-1 and does not fit a double.
 */
export function serializeOciSpec(spec: OciSpec): string {
  const marker = "\u0000bigint:";
  const text = JSON.stringify(
    spec,
    (_key, value: unknown) => (typeof value === "bigint" ? marker + value.toString() : value),
    2,
  );
  return text.replace(/"\\u0000bigint:(\d+)"/g, "$1");
}
