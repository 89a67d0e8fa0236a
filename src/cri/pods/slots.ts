/**
 * At most `size` holders at once, the others waiting their turn, first come first served. Bounds
 * how many pods are made at once (each spawns a few processes), whatever the number of calls.
 */
export class Slots {
  private used = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly size: number) {}

  /** Runs `work` in a slot, waiting for one first when all are taken. */
  async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.used >= this.size) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.used += 1;
    try {
      return await work();
    } finally {
      // The slot passes straight to the next waiter, or is freed.
      const next = this.waiting.shift();
      if (next !== undefined) next();
      else this.used -= 1;
    }
  }
}
