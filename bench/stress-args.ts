/**
 * The command line of `npm run stress` (bench/stress.ts). Pure: parsing and validation only, so
 * the unit tests can hold every rule.
 */
import { parseArgs } from "node:util";
import { parseDuration } from "../src/common/units.js";

export const STRESS_MODES = [
  "monkey",
  "start-stop",
  "install-uninstall",
  "mount-umount",
  "suspend-resume",
  "prepare-start",
] as const;
export type StressMode = (typeof STRESS_MODES)[number];

export interface StressOptions {
  mode: StressMode;
  durationMs: number;
  /** Stress containers (each driven by its own worker connection). */
  containers: number;
  /** kill -9 skiffd this often and start it again on the same state; undefined: never. */
  killDaemonEveryMs: number | undefined;
  /** How often the running figures are printed. */
  reportEveryMs: number;
  /** Seed of the random choices (printed, so a run can be repeated). */
  seed: number;
}

export const STRESS_USAGE = `usage: npm run stress -- --mode MODE --duration D [--containers N]
                        [--kill-daemon-every D] [--report-every D] [--seed N]

  --mode MODE             ${STRESS_MODES.join(" | ")}
  --duration D            how long to run (e.g. 20s, 10m; at most 24h)
  --containers N          stress containers, one worker each (default 4, 1..64)
  --kill-daemon-every D   kill -9 skiffd this often and restart it (at least 1s)
  --report-every D        print the running figures this often (default 10s, at least 1s)
  --seed N                seed of the random choices (default: random, printed)`;

/** A bad command line; the message says which argument and why. */
export class StressUsageError extends Error {
  override name = "StressUsageError";
}

const MAX_DURATION_MS = 24 * 3_600_000;
const MAX_CONTAINERS = 64;

function duration(name: string, text: string, minMs: number, maxMs = MAX_DURATION_MS): number {
  let ms: number;
  try {
    ms = parseDuration(text, { bareSeconds: true });
  } catch (e) {
    throw new StressUsageError(`--${name}: ${(e as Error).message}`);
  }
  if (ms < minMs || ms > maxMs) {
    throw new StressUsageError(`--${name}: ${text} is out of range (${minMs} ms .. ${maxMs} ms)`);
  }
  return ms;
}

function integer(name: string, text: string, min: number, max: number): number {
  if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max) {
    throw new StressUsageError(`--${name}: expected an integer from ${min} to ${max}, got "${text}"`);
  }
  return Number(text);
}

/** Parses `argv` (without node and the script); throws StressUsageError. */
export function parseStressArgs(argv: string[], randomSeed: () => number): StressOptions {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        mode: { type: "string" },
        duration: { type: "string" },
        containers: { type: "string" },
        "kill-daemon-every": { type: "string" },
        "report-every": { type: "string" },
        seed: { type: "string" },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    throw new StressUsageError((e as Error).message);
  }
  if (values.mode === undefined) throw new StressUsageError("--mode is required");
  const mode = STRESS_MODES.find((m) => m === values.mode);
  if (mode === undefined) {
    throw new StressUsageError(`--mode: "${values.mode}" is not one of ${STRESS_MODES.join(", ")}`);
  }
  if (values.duration === undefined) throw new StressUsageError("--duration is required");
  return {
    mode,
    durationMs: duration("duration", values.duration, 1000),
    containers:
      values.containers === undefined ? 4 : integer("containers", values.containers, 1, MAX_CONTAINERS),
    killDaemonEveryMs:
      values["kill-daemon-every"] === undefined
        ? undefined
        : duration("kill-daemon-every", values["kill-daemon-every"], 1000),
    reportEveryMs:
      values["report-every"] === undefined ? 10_000 : duration("report-every", values["report-every"], 1000),
    seed: values.seed === undefined ? randomSeed() : integer("seed", values.seed, 0, 2 ** 32 - 1),
  };
}
