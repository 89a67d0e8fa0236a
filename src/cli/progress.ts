/**
 * Progress of long file work in `skiff` (install's upload, pack's image writing), drawn with
 * cli-progress on a terminal only: when stderr is not a TTY (a pipe, a file, CI) and always with
 * `--json`, nothing is written, so scripts and logs see only results and errors.
 */
import cliProgress from "cli-progress";

const MIB = 1024 * 1024;
/** Smaller files finish before a bar would help: no bar below this. */
export const PROGRESS_THRESHOLD = 8 * MIB;

/** Where progress may go: a stream that says whether it is a terminal. */
export interface ProgressStream extends NodeJS.WritableStream {
  isTTY?: boolean;
}

export interface ProgressOptions {
  /** `--json`: never any progress. */
  json: boolean;
  /** Default: process.stderr. */
  stream?: ProgressStream;
  /** Default: PROGRESS_THRESHOLD. */
  threshold?: number;
}

/** Whether progress is drawn at all: a terminal, and not `--json`. */
export function showsProgress(options: ProgressOptions): boolean {
  const stream = options.stream ?? process.stderr;
  return !options.json && stream.isTTY === true;
}

/** A byte counter shown as a bar; `stop()` ends the bar's line. Silent when not shown. */
export interface ByteProgress {
  update(done: number): void;
  stop(): void;
}

const SILENT: ByteProgress = { update: () => undefined, stop: () => undefined };

/** A bar for `total` bytes labelled `label`, or a silent one (no TTY, `--json`, small `total`). */
export function byteProgress(label: string, total: number, options: ProgressOptions): ByteProgress {
  if (!showsProgress(options) || total < (options.threshold ?? PROGRESS_THRESHOLD)) return SILENT;
  const bar = new cliProgress.SingleBar({
    stream: options.stream ?? process.stderr,
    format: `${label} [{bar}] {percentage}% {doneMiB}/{totalMiB} MiB, ETA {eta_formatted}`,
    barsize: 30,
    hideCursor: true,
    clearOnComplete: false,
    // The format's own values are strings; cli-progress must not touch them.
    formatValue: (value) => String(value),
  });
  const mib = (bytes: number): string => (bytes / MIB).toFixed(1);
  bar.start(total, 0, { doneMiB: mib(0), totalMiB: mib(total) });
  let stopped = false;
  return {
    update(done) {
      if (!stopped) bar.update(Math.min(done, total), { doneMiB: mib(done) });
    },
    stop() {
      if (stopped) return;
      stopped = true;
      bar.stop();
    },
  };
}
