/**
 * Per-connection request rate limit: a token bucket holding at most one second's worth of
 * requests. A request over the rate waits for its token; none is dropped.
 */
import { setTimeout as sleep } from "node:timers/promises";

export class RateLimiter {
  private tokens: number;
  private last = performance.now();

  constructor(private readonly perSecond: number) {
    this.tokens = perSecond;
  }

  async take(signal?: AbortSignal): Promise<void> {
    for (;;) {
      const now = performance.now();
      this.tokens = Math.min(this.perSecond, this.tokens + ((now - this.last) * this.perSecond) / 1000);
      this.last = now;
      if (this.tokens >= 1) {
        this.tokens -= 1;
        return;
      }
      await sleep(Math.ceil(((1 - this.tokens) * 1000) / this.perSecond), undefined, { signal });
    }
  }
}
