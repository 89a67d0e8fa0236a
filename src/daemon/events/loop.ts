/**
 * The daemon's one event loop (after rust-vmm's event-manager): producers enqueue typed events
 * into one bounded queue; the loop takes them one at a time and delivers each to the
 * subscribers that registered for its kind, in registration order.
 *
 * INVARIANTS:
 * - Events are dispatched one at a time; a handler's returned promise is awaited before the
 *   next delivery, so the state owner sees every change serialized.
 * - A handler must never await `enqueue` (the loop would wait for itself when the queue is
 *   full). Work that takes time runs as a job outside the loop; its completion is enqueued by
 *   the job.
 * - Every event is stamped with the time it was enqueued (`clock`, epoch ms); handlers get the
 *   stamp beside the event, so what they decide depends on the event, not on when it ran.
 * - Producers outside the loop `enqueue`, which waits while the queue is full (back-pressure)
 *   and never drops an event.
 * - A subscription removed while an event is being dispatched receives nothing more, not even
 *   the rest of that event's deliveries.
 */

/** `at`: epoch ms when the event was enqueued. */
export type EventHandler<E> = (event: E, at: number) => void | Promise<void>;

export interface Subscription {
  readonly name: string;
  /** Stops deliveries at once, including ones pending for the event being dispatched. */
  remove(): void;
}

interface Subscriber<E> {
  name: string;
  kinds: ReadonlySet<string>;
  handler: EventHandler<E>;
  active: boolean;
}

export class EventLoopClosedError extends Error {
  override name = "EventLoopClosedError";
  constructor() {
    super("event loop is closed");
  }
}

export interface EventLoopOptions {
  /** Maximum queued events before `enqueue` waits. */
  capacity: number;
  /** Called when a handler throws; the loop keeps running. */
  onHandlerError?: (subscriber: string, event: unknown, error: unknown) => void;
  /** The time stamped on each event as it is enqueued; `Date.now` unless a test sets it. */
  clock?: () => number;
}

export class EventLoop<E extends { kind: string }> {
  private readonly queue: { event: E; at: number }[] = [];
  private readonly spaceWaiters: (() => void)[] = [];
  private readonly subscribers: Subscriber<E>[] = [];
  private wakeLoop: (() => void) | undefined;
  private closed = false;
  private processed = 0;

  constructor(private readonly options: EventLoopOptions) {
    if (!Number.isInteger(options.capacity) || options.capacity < 1) {
      throw new RangeError("event loop capacity must be a positive integer");
    }
  }

  /** Events dispatched since start. */
  get eventsProcessed(): number {
    return this.processed;
  }

  get length(): number {
    return this.queue.length;
  }

  subscribe(name: string, kinds: readonly E["kind"][], handler: EventHandler<E>): Subscription {
    const sub: Subscriber<E> = { name, kinds: new Set(kinds), handler, active: true };
    this.subscribers.push(sub);
    return {
      name,
      remove: () => {
        sub.active = false;
        const i = this.subscribers.indexOf(sub);
        if (i >= 0) this.subscribers.splice(i, 1);
      },
    };
  }

  /** Queues an event, waiting while the queue is full. Rejects once the loop is closed. */
  async enqueue(event: E, signal?: AbortSignal): Promise<void> {
    while (this.queue.length >= this.options.capacity) {
      if (this.closed) throw new EventLoopClosedError();
      signal?.throwIfAborted();
      await new Promise<void>((resolve, reject) => {
        const onAbort = (): void => reject(signal!.reason as Error);
        signal?.addEventListener("abort", onAbort, { once: true });
        this.spaceWaiters.push(() => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        });
      });
    }
    this.push(event);
  }

  private push(event: E): void {
    if (this.closed) throw new EventLoopClosedError();
    this.queue.push({ event, at: (this.options.clock ?? Date.now)() });
    this.wakeLoop?.();
  }

  /** Runs until `close()` and then drains what is queued. */
  async run(): Promise<void> {
    for (;;) {
      const entry = this.queue.shift();
      if (entry === undefined) {
        if (this.closed) return;
        await new Promise<void>((resolve) => (this.wakeLoop = resolve));
        this.wakeLoop = undefined;
        continue;
      }
      this.spaceWaiters.shift()?.();
      await this.dispatch(entry.event, entry.at);
      this.processed++;
    }
  }

  private async dispatch(event: E, at: number): Promise<void> {
    // Snapshot: subscribers added during dispatch see the next event, removed ones see nothing.
    for (const sub of [...this.subscribers]) {
      if (!sub.active || !sub.kinds.has(event.kind)) continue;
      try {
        await sub.handler(event, at);
      } catch (error) {
        this.options.onHandlerError?.(sub.name, event, error);
      }
    }
  }

  /** Stops accepting events; `run` returns after draining the queue. Waiting producers fail. */
  close(): void {
    this.closed = true;
    this.wakeLoop?.();
    for (const wake of this.spaceWaiters.splice(0)) wake();
  }
}
