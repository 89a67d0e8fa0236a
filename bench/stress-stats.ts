/**
 * The figures of `npm run stress` (bench/stress.ts): counts by kind, latency summaries, the
 * ledger of instances and exits, a seeded random source and time series thinning. Pure, so the
 * unit tests hold the arithmetic.
 */

/** Counts by kind (operations, errors, hostile clients). */
export class Counts {
  private readonly counts = new Map<string, number>();

  add(kind: string, n = 1): void {
    this.counts.set(kind, (this.counts.get(kind) ?? 0) + n);
  }

  get(kind: string): number {
    return this.counts.get(kind) ?? 0;
  }

  get total(): number {
    let sum = 0;
    for (const n of this.counts.values()) sum += n;
    return sum;
  }

  /** Kinds by descending count, then by name. */
  entries(): [string, number][] {
    return [...this.counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  }

  /** "kind n, kind n, ..." (at most `limit` kinds, then "+k more"). */
  format(limit = 12): string {
    const all = this.entries();
    if (all.length === 0) return "none";
    const shown = all.slice(0, limit).map(([k, n]) => `${k} ${n}`);
    if (all.length > limit) shown.push(`+${all.length - limit} more kinds`);
    return shown.join(", ");
  }
}

export interface LatencySummary {
  count: number;
  p50: number;
  p99: number;
  max: number;
}

/** Nearest-rank percentile of unsorted samples; NaN for none. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export function summarize(samples: readonly number[]): LatencySummary {
  let max = samples.length === 0 ? Number.NaN : -Infinity;
  for (const s of samples) if (s > max) max = s;
  return { count: samples.length, p50: percentile(samples, 50), p99: percentile(samples, 99), max };
}

/**
 * Latency samples with a bounded memory: the whole run keeps at most `capacity` samples (a
 * uniform reservoir once full, so the percentiles stay those of the whole run) and an exact
 * maximum and count; the current window (since the last `takeWindow`) keeps its own samples,
 * bounded the same way.
 */
export class LatencyRecorder {
  private readonly reservoir: number[] = [];
  private window: number[] = [];
  private count = 0;
  private max = Number.NaN;

  constructor(
    private readonly capacity: number,
    private readonly random: () => number,
  ) {}

  record(ms: number): void {
    this.count++;
    if (!(ms <= this.max)) this.max = ms;
    if (this.reservoir.length < this.capacity) this.reservoir.push(ms);
    else {
      const slot = Math.floor(this.random() * this.count);
      if (slot < this.capacity) this.reservoir[slot] = ms;
    }
    if (this.window.length < this.capacity) this.window.push(ms);
  }

  /** The window's summary; starts a new window. */
  takeWindow(): LatencySummary {
    const summary = summarize(this.window);
    this.window = [];
    return summary;
  }

  /** The whole run: exact count and max, percentiles from the reservoir. */
  overall(): LatencySummary {
    const s = summarize(this.reservoir);
    return { ...s, count: this.count, max: this.max };
  }
}

/** mulberry32: a small seeded generator, so a run's choices can be repeated with its seed. */
export class Rng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError("pick from nothing");
    return items[Math.floor(this.next() * items.length)]!;
  }

  /** Picks by weight: [[item, weight], ...] with positive weights. */
  weighted<T>(items: readonly (readonly [T, number])[]): T {
    const total = items.reduce((sum, [, w]) => sum + w, 0);
    let r = this.next() * total;
    for (const [item, w] of items) {
      r -= w;
      if (r < 0) return item;
    }
    return items[items.length - 1]![0];
  }
}

/**
 * Instances against exit notifications. The ground truth of an instance is the container's own
 * record (each stress instance appends a line to its persist directory before anything else);
 * notifications are what a client was told.
 */
export interface ExitAccount {
  /** Instances that ran (ground truth). */
  instances: number;
  startedNotifications: number;
  exitNotifications: number;
  /** Instances without an exit notification. */
  lost: number;
  /** Exit notifications beyond the instances of their container (no instance id needed). */
  duplicatedByCount: number;
  /** Exit notifications repeating an instance id already reported. */
  duplicatedById: number;
  /** Exit notifications that carried an instance id. */
  exitsWithId: number;
  /** Exit notifications with `reason: error` (a failed start or a dead monitor). */
  errorExits: number;
}

export class ExitLedger {
  private readonly started = new Map<string, number>();
  private readonly exits = new Map<string, number>();
  private readonly exitIds = new Map<string, number>();
  private readonly errorExits = new Map<string, number>();
  private withId = 0;

  recordStarted(container: string): void {
    this.started.set(container, (this.started.get(container) ?? 0) + 1);
  }

  recordExit(container: string, instance: string | undefined, error = false): void {
    this.exits.set(container, (this.exits.get(container) ?? 0) + 1);
    if (error) this.errorExits.set(container, (this.errorExits.get(container) ?? 0) + 1);
    if (instance === undefined) return;
    this.withId++;
    const key = `${container}\u0000${instance}`;
    this.exitIds.set(key, (this.exitIds.get(key) ?? 0) + 1);
  }

  exitsOf(container: string): number {
    return this.exits.get(container) ?? 0;
  }

  startedOf(container: string): number {
    return this.started.get(container) ?? 0;
  }

  /** Compares with the instances each container actually ran; only those containers count. */
  reconcile(instancesByContainer: ReadonlyMap<string, number>): ExitAccount {
    const account: ExitAccount = {
      instances: 0,
      startedNotifications: 0,
      exitNotifications: 0,
      lost: 0,
      duplicatedByCount: 0,
      duplicatedById: 0,
      exitsWithId: 0,
      errorExits: 0,
    };
    for (const [container, instances] of instancesByContainer) {
      account.errorExits += this.errorExits.get(container) ?? 0;
      const exits = this.exitsOf(container);
      account.instances += instances;
      account.startedNotifications += this.startedOf(container);
      account.exitNotifications += exits;
      account.lost += Math.max(0, instances - exits);
      account.duplicatedByCount += Math.max(0, exits - instances);
    }
    for (const [key, n] of this.exitIds) {
      const container = key.slice(0, key.indexOf("\u0000"));
      if (instancesByContainer.has(container)) account.duplicatedById += n - 1;
    }
    account.exitsWithId = this.withId;
    return account;
  }
}

/** At most `n` points of a series, evenly spread, always with the first and the last. */
export function thin<T>(series: readonly T[], n: number): T[] {
  if (series.length <= n) return [...series];
  if (n < 2) return series.length === 0 ? [] : [series[series.length - 1]!];
  const out: T[] = [];
  for (let i = 0; i < n; i++) out.push(series[Math.round((i * (series.length - 1)) / (n - 1))]!);
  return out;
}

export const fmtMs = (v: number): string => (Number.isNaN(v) ? "-" : `${v.toFixed(v < 10 ? 2 : 1)} ms`);
export const fmtMiB = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

/** "1h02m03s" / "4m05s" / "12s". */
export function fmtDuration(ms: number): string {
  const s = Math.floor(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  if (h > 0) return `${h}h${String(m).padStart(2, "0")}m${String(sec).padStart(2, "0")}s`;
  if (m > 0) return `${m}m${String(sec).padStart(2, "0")}s`;
  return `${sec}s`;
}
