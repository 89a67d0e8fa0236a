/**
 * Skiff: exits a subscriber has already seen, by instance identity. skiffd reports every exit
 * exactly once, except after a crash during the delivery, when the restarted daemon reports it
 * again with the same `instance` (docs/containers.md). A connection drops an exit whose instance
 * is here; a subscriber that reconnects passes the same SeenExits to every `connect`, so the
 * repeat, which comes on the new connection, is dropped too.
 *
 * Memory is bounded: the oldest identities are forgotten first. A repeat only follows a daemon
 * restart, so it trails the original by at most the exits of one start-up.
 */
export class SeenExits {
  private readonly seen = new Set<string>();

  constructor(readonly capacity = 4096) {}

  /** Records `instance`; false when it was seen before (the exit is a repeat). */
  firstTime(instance: string): boolean {
    if (this.seen.has(instance)) return false;
    this.seen.add(instance);
    // A Set iterates in insertion order: the first entry is the oldest.
    if (this.seen.size > this.capacity) this.seen.delete(this.seen.values().next().value as string);
    return true;
  }
}
