/**
 * How late the daemon's event loop runs its timers: the figure behind "no request may block the
 * loop for more than a few milliseconds". An interval timer ticks every `resolutionMs` and
 * records the time since its previous tick (an interval drift check; `monitorEventLoopDelay`
 * measures the same, but its histogram cannot be merged, and windows need merging). An idle loop
 * reads about `resolutionMs`; a loop blocked for B ms reads between B and B + `resolutionMs`.
 *
 * INVARIANTS: `live` holds the samples of the current window; every `windowMs` they are merged
 * into `total` and `live` is reset, so `total` + `live` is the whole life of the monitor and
 * `previousWindowMax` the longest gap of the window before. Nothing is reset by reading: two
 * scrapers never steal each other's figures.
 */
import { createHistogram, performance, type RecordableHistogram } from "node:perf_hooks";

/** 100 wake-ups a second: cheap, and fine enough against a 100 ms goal. */
export const DEFAULT_LOOP_DELAY_RESOLUTION_MS = 10;
/** "Recent" is the current window and the one before: 10 to 20 s. */
export const LOOP_DELAY_WINDOW_MS = 10_000;

const NS_PER_SECOND = 1e9;

/** The loop delay figures, in seconds (NaN quantiles before the first sample). */
export interface LoopDelay {
  /** The timer's interval; every sample includes it. */
  resolutionSeconds: number;
  /** Samples since the monitor started. */
  count: number;
  /** Sum of those samples. */
  sumSeconds: number;
  p50Seconds: number;
  p99Seconds: number;
  /** The longest gap between two ticks since start: the longest stall, plus at most one resolution. */
  maxSeconds: number;
  /** The longest gap in the last 10 to 20 s (the current window and the one before). */
  recentMaxSeconds: number;
}

/** The histograms behind LoopDelayMonitor, without timers (pure, so tests drive it). */
export class LoopDelayWindows {
  private readonly live: RecordableHistogram = createHistogram();
  private readonly total: RecordableHistogram = createHistogram();
  private previousWindowMax = 0;

  constructor(private readonly resolutionMs: number) {}

  /** One gap between two ticks, in nanoseconds. */
  record(gapNs: number): void {
    this.live.record(Math.max(1, Math.round(gapNs)));
  }

  /** Ends the current window. */
  rotate(): void {
    this.previousWindowMax = this.live.count === 0 ? 0 : this.live.max;
    this.total.add(this.live);
    this.live.reset();
  }

  read(): LoopDelay {
    const all = createHistogram();
    all.add(this.total);
    all.add(this.live);
    const count = all.count;
    const liveMax = this.live.count === 0 ? 0 : this.live.max;
    return {
      resolutionSeconds: this.resolutionMs / 1000,
      count,
      sumSeconds: count === 0 ? 0 : (all.mean * count) / NS_PER_SECOND,
      p50Seconds: count === 0 ? Number.NaN : all.percentile(50) / NS_PER_SECOND,
      p99Seconds: count === 0 ? Number.NaN : all.percentile(99) / NS_PER_SECOND,
      maxSeconds: count === 0 ? 0 : all.max / NS_PER_SECOND,
      recentMaxSeconds: Math.max(liveMax, this.previousWindowMax) / NS_PER_SECOND,
    };
  }
}

/** Measures the loop it runs on from construction until `stop()`. */
export class LoopDelayMonitor {
  private readonly windows: LoopDelayWindows;
  private lastTick = performance.now();
  private readonly ticker: NodeJS.Timeout;
  private readonly rotation: NodeJS.Timeout;

  constructor(resolutionMs = DEFAULT_LOOP_DELAY_RESOLUTION_MS, windowMs = LOOP_DELAY_WINDOW_MS) {
    this.windows = new LoopDelayWindows(resolutionMs);
    this.ticker = setInterval(() => {
      const now = performance.now();
      this.windows.record((now - this.lastTick) * 1e6);
      this.lastTick = now;
    }, resolutionMs).unref();
    this.rotation = setInterval(() => this.windows.rotate(), windowMs).unref();
  }

  read(): LoopDelay {
    return this.windows.read();
  }

  stop(): void {
    clearInterval(this.ticker);
    clearInterval(this.rotation);
  }
}
