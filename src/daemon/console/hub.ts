/**
 * Notification fan-out: every subscribed connection's outbox gets each notification. Called by
 * the state owner's notify steps; O(subscribers), no I/O waits.
 */
import type { Notification } from "../../protocol/messages.js";
import type { Outbox } from "./outbox.js";

export class NotificationHub {
  private readonly subscribers = new Set<Outbox>();

  add(outbox: Outbox): () => void {
    this.subscribers.add(outbox);
    return () => this.subscribers.delete(outbox);
  }

  get size(): number {
    return this.subscribers.size;
  }

  broadcast(notification: Notification): void {
    for (const outbox of this.subscribers) outbox.notify(notification);
  }
}
