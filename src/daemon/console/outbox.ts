/**
 * A connection's outgoing side. Responses are written at once (one per request); the session
 * stops reading requests while too much of that output is unread (`unread`, `drained`), which
 * bounds the responses a peer that never reads can make the daemon hold. Notifications go
 * through a bounded queue that is flushed only while the socket accepts data without
 * buffering; when it is full, further notifications are counted and dropped, and a single
 * `lagged {missed}` notification takes their place in the stream, so the client knows exactly
 * where the gap is. That is the Skiff dialect; in the Northstar dialect a full queue closes the
 * connection, as Northstar's console does when a subscriber lags (its clients know no `lagged`).
 * Every line is encoded by `encodeFor` in the connection's dialect, here and nowhere else.
 *
 * INVARIANTS: `notify` never blocks and never grows memory past `capacity` + 1 entries, so a
 * slow subscriber cannot slow the event loop or any other client. The account always holds the
 * socket's current write buffer size (updated on every write and every drain).
 */
import type { Socket } from "node:net";
import { encodeFor } from "../../protocol/dialect.js";
import type { Dialect, Message, Notification, Request } from "../../protocol/messages.js";
import type { BudgetAccount } from "./budget.js";

export class Outbox {
  private readonly queue: Notification[] = [];
  private missed = 0;
  private waitingForDrain = false;
  /** Decided by the handshake; `connect_nack` and `connect_ack` read the same in both. */
  dialect: Dialect = "northstar";

  constructor(
    private readonly socket: Socket,
    private readonly capacity: number,
    private readonly account?: BudgetAccount,
  ) {
    socket.on("drain", () => {
      this.waitingForDrain = false;
      this.flush();
      this.account?.setOutput(socket.writableLength);
    });
  }

  /** Called when a Northstar-dialect subscriber lags: the session closes the connection. */
  onLag: (() => void) | undefined;

  /** Total notifications dropped for this connection. */
  droppedTotal = 0;

  /** Bytes written that the peer has not taken yet (beyond what the kernel buffers). */
  get unread(): number {
    return this.socket.writableLength;
  }

  /**
   * Writes `message` (a response: with the request it answers). False when it has no form in
   * the connection's dialect: the caller closes the connection.
   */
  send(message: Message, request?: Request): boolean {
    if (this.socket.destroyed || this.socket.writableEnded) return true;
    const line = encodeFor(this.dialect, message, request);
    if (line === undefined) return false;
    this.write(line);
    return true;
  }

  notify(notification: Notification): void {
    if (this.socket.destroyed || this.socket.writableEnded) return;
    if (this.queue.length >= this.capacity) {
      this.missed++;
      this.droppedTotal++;
      if (this.dialect === "northstar") this.onLag?.();
      return;
    }
    if (this.missed > 0) {
      this.queue.push({ type: "lagged", missed: this.missed });
      this.missed = 0;
    }
    this.queue.push(notification);
    this.flush();
  }

  /**
   * Resolves true once the socket's write buffer has drained, false if the socket closed
   * first. Only meaningful while the buffer is over its high-water mark (`needsDrain`), since
   * only then does a `drain` follow.
   */
  drained(): Promise<boolean> {
    if (!this.needsDrain) return Promise.resolve(!this.socket.destroyed);
    return new Promise((resolve) => {
      const done = (ok: boolean) => (): void => {
        this.socket.off("drain", onDrain);
        this.socket.off("close", onClose);
        resolve(ok);
      };
      const onDrain = done(true);
      const onClose = done(false);
      this.socket.once("drain", onDrain);
      this.socket.once("close", onClose);
    });
  }

  /** The write buffer is over its high-water mark; a `drain` event will follow. */
  get needsDrain(): boolean {
    return !this.socket.destroyed && this.socket.writableNeedDrain;
  }

  private write(line: string): void {
    if (!this.socket.write(line)) this.waitingForDrain = true;
    this.account?.setOutput(this.socket.writableLength);
  }

  private flush(): void {
    while (!this.waitingForDrain && !this.socket.destroyed && !this.socket.writableEnded) {
      let notification = this.queue.shift();
      if (notification === undefined) {
        if (this.missed === 0) return;
        notification = { type: "lagged", missed: this.missed };
        this.missed = 0;
      }
      const line = encodeFor(this.dialect, { type: "notification", notification });
      if (line !== undefined) this.write(line);
    }
  }
}
