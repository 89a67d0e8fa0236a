/**
 * Notification fan-out: every subscribed connection's outbox gets each notification. Called by
 * the state owner's notify steps; O(subscribers), no I/O waits.
 */
import type { Notification } from "../../protocol/messages.js";
import type { Outbox } from "./outbox.js";

export class NotificationHub {
  private readonly subscribers = new Set<Outbox>();

  private readonly firstSubscriberWaiters: (() => void)[] = [];

  add(outbox: Outbox): () => void {
    this.subscribers.add(outbox);
    for (const wake of this.firstSubscriberWaiters.splice(0)) wake();
    return () => this.subscribers.delete(outbox);
  }

  /** Resolves when a subscriber is connected, or after `timeoutMs`, whichever comes first. */
  waitForSubscriber(timeoutMs: number): Promise<void> {
    if (this.subscribers.size > 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      timer.unref();
      this.firstSubscriberWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  get size(): number {
    return this.subscribers.size;
  }

  broadcast(notification: Notification): void {
    for (const outbox of this.subscribers) outbox.notify(notification);
  }
}
