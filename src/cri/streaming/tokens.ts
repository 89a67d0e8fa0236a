/**
 * One-time tokens of the streaming server: `Exec`/`Attach`/`PortForward` store their request
 * under a random token and answer its URL; the client's HTTP request takes it back exactly once.
 * A token expires after `ttlMs`; at most `max` are outstanding (a new one beyond that is
 * refused: a kubelet uses each URL at once, so many unused ones mean a broken or hostile client).
 * The clock is injected so the rules are tested without waiting.
 */
import { randomBytes } from "node:crypto";

export class TokenCache<T> {
  private readonly entries = new Map<string, { value: T; expires: number }>();

  constructor(private readonly o: { ttlMs: number; max: number; now?: () => number }) {}

  private now(): number {
    return (this.o.now ?? Date.now)();
  }

  /** Stores `value`; undefined when `max` tokens are outstanding already. */
  insert(value: T): string | undefined {
    this.sweep();
    if (this.entries.size >= this.o.max) return undefined;
    // 16 random bytes: unguessable, and URL-safe without escaping.
    const token = randomBytes(16).toString("base64url");
    this.entries.set(token, { value, expires: this.now() + this.o.ttlMs });
    return token;
  }

  /** The value of `token`, removed: a second take, an expired or unknown token gives undefined. */
  take(token: string): T | undefined {
    const entry = this.entries.get(token);
    if (entry === undefined) return undefined;
    this.entries.delete(token);
    return entry.expires > this.now() ? entry.value : undefined;
  }

  get size(): number {
    return this.entries.size;
  }

  private sweep(): void {
    const now = this.now();
    for (const [token, entry] of this.entries) if (entry.expires <= now) this.entries.delete(token);
  }
}
