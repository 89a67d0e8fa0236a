/**
 * How late the daemon's event loop runs its timers: the figure behind "no request may block the
 * loop for more than a few milliseconds". A `perf_hooks.monitorEventLoopDelay` timer ticks every
 * `resolutionMs`; each sample is the time between two ticks, so an idle loop reads about
 * `resolutionMs` and a loop blocked for B ms reads between B and B + `resolutionMs`. The
 * histogram covers the whole life of the monitor (no reset: two scrapers must not steal each
 * other's maximum).
 */
import { monitorEventLoopDelay, type IntervalHistogram } from "node:perf_hooks";

/** 100 wake-ups a second: cheap, and fine enough against a 100 ms goal. */
export const DEFAULT_LOOP_DELAY_RESOLUTION_MS = 10;

const NS_PER_SECOND = 1e9;

/** The loop delay figures since the monitor started, in seconds (NaN quantiles before the first sample). */
export interface LoopDelay {
  /** The timer's interval; every sample includes it. */
  resolutionSeconds: number;
  /** Samples taken. */
  count: number;
  /** Sum of all samples (mean × count). */
  sumSeconds: number;
  p50Seconds: number;
  p99Seconds: number;
  /** The longest gap between two ticks: the longest stall, plus at most one resolution. */
  maxSeconds: number;
}

export class LoopDelayMonitor {
  private readonly histogram: IntervalHistogram;

  constructor(private readonly resolutionMs = DEFAULT_LOOP_DELAY_RESOLUTION_MS) {
    this.histogram = monitorEventLoopDelay({ resolution: resolutionMs });
    this.histogram.enable();
  }

  read(): LoopDelay {
    const h = this.histogram;
    const count = h.count;
    return {
      resolutionSeconds: this.resolutionMs / 1000,
      count,
      sumSeconds: count === 0 ? 0 : (h.mean * count) / NS_PER_SECOND,
      p50Seconds: count === 0 ? Number.NaN : h.percentile(50) / NS_PER_SECOND,
      p99Seconds: count === 0 ? Number.NaN : h.percentile(99) / NS_PER_SECOND,
      maxSeconds: count === 0 ? 0 : h.max / NS_PER_SECOND,
    };
  }

  stop(): void {
    this.histogram.disable();
  }
}
