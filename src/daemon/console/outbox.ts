/**
 * A connection's outgoing side. Responses are written at once (one per request, so the peer's
 * own request rate bounds them). Notifications go through a bounded queue that is flushed only
 * while the socket accepts data without buffering; when it is full, further notifications are
 * counted and dropped, and a single `lagged {missed}` notification takes their place in the
 * stream, so the client knows exactly where the gap is.
 *
 * INVARIANTS: `notify` never blocks and never grows memory past `capacity` + 1 entries, so a
 * slow subscriber cannot slow the event loop or any other client.
 */
import type { Socket } from "node:net";
import { encodeMessage } from "../../protocol/codec.js";
import type { Message, Notification } from "../../protocol/messages.js";

export class Outbox {
  private readonly queue: Notification[] = [];
  private missed = 0;
  private waitingForDrain = false;

  constructor(
    private readonly socket: Socket,
    private readonly capacity: number,
  ) {
    socket.on("drain", () => {
      this.waitingForDrain = false;
      this.flush();
    });
  }

  /** Total notifications dropped for this connection. */
  droppedTotal = 0;

  send(message: Message): void {
    if (this.socket.destroyed) return;
    if (!this.socket.write(encodeMessage(message))) this.waitingForDrain = true;
  }

  notify(notification: Notification): void {
    if (this.socket.destroyed) return;
    if (this.queue.length >= this.capacity) {
      this.missed++;
      this.droppedTotal++;
      return;
    }
    if (this.missed > 0) {
      this.queue.push({ type: "lagged", missed: this.missed });
      this.missed = 0;
    }
    this.queue.push(notification);
    this.flush();
  }

  private flush(): void {
    while (!this.waitingForDrain && !this.socket.destroyed) {
      let notification = this.queue.shift();
      if (notification === undefined) {
        if (this.missed === 0) return;
        notification = { type: "lagged", missed: this.missed };
        this.missed = 0;
      }
      if (!this.socket.write(encodeMessage({ type: "notification", notification })))
        this.waitingForDrain = true;
    }
  }
}
