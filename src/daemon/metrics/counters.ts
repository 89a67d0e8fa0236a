/**
 * Counters the daemon keeps for the Prometheus endpoint over its life, fed by what it already
 * does: the notifications it broadcasts (exits with `oom`, `power` asleep/awake) and its start
 * steps and their results (start latency). Pure bookkeeping, no timers: `observe*` is called by
 * the runtime where those happen, `read()` by a scrape.
 *
 * INVARIANTS: a container's series are keyed by its id ("name:version") and never removed while
 * the daemon runs (a counter that disappears reads as a reset to Prometheus); `pendingStarts`
 * holds a container from its start step until its start succeeded, failed or the instance ended.
 */
import type { ContainerId } from "../../protocol/container.js";
import type { Notification } from "../../protocol/messages.js";

/** Upper bounds (seconds) of the start latency histogram's buckets; +Inf is implied. */
export const START_LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30] as const;

export interface Histogram {
  /** Cumulative counts, one per START_LATENCY_BUCKETS bound (le), then +Inf (= count). */
  buckets: number[];
  sum: number;
  count: number;
}

export interface CounterSnapshot {
  oomKills: ReadonlyMap<ContainerId, number>;
  suspends: ReadonlyMap<ContainerId, number>;
  suspendSeconds: ReadonlyMap<ContainerId, number>;
  /** Keyed by container, then by wake reason. */
  wakes: ReadonlyMap<ContainerId, ReadonlyMap<string, number>>;
  startLatency: Histogram;
}

/** What a `power` awake notification's container reports of its last sleep (state PowerRecord). */
export type LastSuspend = { suspend_time: number; resume_reason: string } | null | undefined;

const NS_PER_SECOND = 1e9;

export class DaemonCounters {
  private readonly oomKills = new Map<ContainerId, number>();
  private readonly suspends = new Map<ContainerId, number>();
  private readonly suspendSeconds = new Map<ContainerId, number>();
  private readonly wakes = new Map<ContainerId, Map<string, number>>();
  private readonly pendingStarts = new Map<ContainerId, number>();
  private readonly latencyCounts = START_LATENCY_BUCKETS.map(() => 0);
  private latencySum = 0;
  private latencyCount = 0;

  /** A broadcast notification; `lastSuspend` reads the container's last sleep from the state. */
  observeNotification(n: Notification, lastSuspend: (container: ContainerId) => LastSuspend): void {
    switch (n.type) {
      case "exit":
        this.pendingStarts.delete(n.container);
        if (n.status.oom === true) add(this.oomKills, n.container, 1);
        return;
      case "power": {
        if (n.state !== "awake") return;
        const last = lastSuspend(n.container);
        add(this.suspends, n.container, 1);
        add(this.suspendSeconds, n.container, (last?.suspend_time ?? 0) / NS_PER_SECOND);
        const reasons = last?.resume_reason ? last.resume_reason.split(",") : ["unknown"];
        let byReason = this.wakes.get(n.container);
        if (!byReason) this.wakes.set(n.container, (byReason = new Map<string, number>()));
        for (const reason of reasons) add(byReason, reason, 1);
        return;
      }
      case "c_group":
      case "install":
      case "shutdown":
      case "started":
      case "uninstall":
      case "restarted":
      case "health":
      case "lagged":
        return;
    }
  }

  /** A start step (not a prepare) was handed to the container executor at `nowMs`. */
  startRequested(container: ContainerId, nowMs: number): void {
    this.pendingStarts.set(container, nowMs);
  }

  /** The start succeeded at `nowMs`: one latency sample. */
  startSucceeded(container: ContainerId, nowMs: number): void {
    const since = this.pendingStarts.get(container);
    if (since === undefined) return;
    this.pendingStarts.delete(container);
    const seconds = Math.max(0, nowMs - since) / 1000;
    this.latencySum += seconds;
    this.latencyCount++;
    START_LATENCY_BUCKETS.forEach((bound, i) => {
      if (seconds <= bound) this.latencyCounts[i]!++;
    });
  }

  /** The start failed: no sample. */
  startFailed(container: ContainerId): void {
    this.pendingStarts.delete(container);
  }

  read(): CounterSnapshot {
    return {
      oomKills: new Map(this.oomKills),
      suspends: new Map(this.suspends),
      suspendSeconds: new Map(this.suspendSeconds),
      wakes: new Map([...this.wakes].map(([c, m]) => [c, new Map(m)])),
      startLatency: {
        buckets: [...this.latencyCounts, this.latencyCount],
        sum: this.latencySum,
        count: this.latencyCount,
      },
    };
  }
}

function add<K>(map: Map<K, number>, key: K, value: number): void {
  map.set(key, (map.get(key) ?? 0) + value);
}
