/** Small helpers shared by the benchmarks: percentiles and formatting. */

export function percentile(samples: number[], p: number): number {
  if (samples.length === 0) return NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export const ms = (v: number): string => `${v.toFixed(3)} ms`;

/** "figure vs baseline (ratio x)" */
export function versus(label: string, figure: string, baseline: string, ratio: number): string {
  return `${label}: ${figure}  | baseline ${baseline}  | ratio ${ratio.toFixed(2)}x`;
}

/** "figure vs baseline (ratio x) | target T: met" — for the figures the project has a target for. */
export function versusTarget(
  label: string,
  figure: string,
  baseline: string,
  ratio: number,
  target: { text: string; met: boolean },
): string {
  return `${versus(label, figure, baseline, ratio)}  | target ${target.text}: ${target.met ? "met" : "NOT met"}`;
}

/** Wall time of one awaited action, in ms. */
export async function timed(body: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await body();
  return performance.now() - start;
}

/** Runs `work(i)` for i in [0, count) on `workers` sequential workers. */
export async function inWorkers(
  count: number,
  workers: number,
  work: (i: number, worker: number) => Promise<void>,
): Promise<void> {
  await Promise.all(
    Array.from({ length: workers }, async (_, w) => {
      for (let i = w; i < count; i += workers) await work(i, w);
    }),
  );
}
