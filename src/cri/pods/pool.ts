/**
 * Sandboxes prepared in advance (gate's `PrepareProcesses(bufsize)`, `[cri] sandbox_pool`): the
 * namespaces, loopback, veth and address of a pod made before any RunPodSandbox asks, so that a
 * RunPodSandbox taking one only sets the hostname, writes the files, creates the cgroup and opens
 * the ports. Refilled in the background, one sandbox at a time, off the request path.
 *
 * INVARIANTS: a sandbox is in `ready` from the end of its preparation until it is taken (it then
 * belongs to the pod) or the pool closes (it is discarded); at most one preparation runs at a
 * time; a failed preparation stops refilling until the next take (no busy loop on a broken host).
 */
import type { Logger } from "pino";

export interface PreparedSandbox {
  /** The id the pod will have (its directory is already `pods/<id>`). */
  id: string;
  /** Its address on the pod network; undefined when the network is not ready. */
  ip: string | undefined;
}

export class SandboxPool {
  private readonly ready: PreparedSandbox[] = [];
  private filling: Promise<void> | undefined;
  private closed = false;
  private waiters: (() => void)[] = [];

  constructor(
    private readonly capacity: number,
    private readonly prepare: () => Promise<PreparedSandbox>,
    private readonly discard: (sandbox: PreparedSandbox) => Promise<void>,
    private readonly log: Logger,
  ) {}

  /** The sandboxes ready now (not taken). */
  prepared(): readonly PreparedSandbox[] {
    return this.ready;
  }

  size(): number {
    return this.ready.length;
  }

  /**
   * A prepared sandbox, or undefined when none is ready. The caller calls `refill` once its
   * request is answered, so the refill's processes do not compete with the request they replace.
   */
  take(): PreparedSandbox | undefined {
    return this.ready.shift();
  }

  /** Starts filling up to the capacity in the background, unless a fill is running. */
  refill(): void {
    if (this.closed || this.filling !== undefined || this.ready.length >= this.capacity) {
      this.wake();
      return;
    }
    this.filling = this.fill().finally(() => {
      this.filling = undefined;
      this.wake();
    });
  }

  /** Resolves when the pool is full or its fill stopped (failure, close). */
  filled(): Promise<void> {
    if (this.filling === undefined) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.filling;
    const left = this.ready.splice(0);
    for (const sandbox of left) {
      await this.discard(sandbox).catch((e: unknown) =>
        this.log.warn({ err: e, pod: sandbox.id }, "discarding a prepared sandbox failed"),
      );
    }
  }

  private async fill(): Promise<void> {
    while (!this.closed && this.ready.length < this.capacity) {
      try {
        const sandbox = await this.prepare();
        if (this.closed) await this.discard(sandbox);
        else this.ready.push(sandbox);
      } catch (e) {
        this.log.error({ err: e }, "preparing a pod sandbox failed; the pool refills at the next take");
        return;
      }
    }
  }

  private wake(): void {
    if (this.filling !== undefined) return;
    const waiters = this.waiters.splice(0);
    for (const resolve of waiters) resolve();
  }
}
