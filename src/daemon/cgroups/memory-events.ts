// Memory events of a container cgroup (Northstar's MemoryEvent), emitted as counts since the previous event.
import { watch, type FSWatcher } from "node:fs";
import type { CgroupLayout } from "./layout.js";
import { controllerDir } from "./paths.js";
import { parseFlatKeyed, readOptionalText } from "./fsio.js";

/** Field names as in Northstar's MemoryEvent. Each present field is a count since the last emitted event. */
export interface MemoryEvent {
  low?: number;
  high?: number;
  max?: number;
  oom?: number;
  oom_kill?: number;
  oom_group_kill?: number;
}

/** Absolute counter values as the kernel reports them. */
export type MemoryCounters = Required<MemoryEvent>;

const FIELDS = ["low", "high", "max", "oom", "oom_kill", "oom_group_kill"] as const;

const ZERO: MemoryCounters = { low: 0, high: 0, max: 0, oom: 0, oom_kill: 0, oom_group_kill: 0 };

/** Parses v2 memory.events. */
export function parseMemoryEvents(text: string): MemoryCounters {
  const values = parseFlatKeyed(text);
  const counters = { ...ZERO };
  for (const field of FIELDS) counters[field] = values.get(field) ?? 0;
  return counters;
}

export interface OomControl {
  oomKillDisable: boolean;
  underOom: boolean;
  /** Tasks of this cgroup killed by the OOM killer (kernel >= 4.13). */
  oomKill: number;
}

/** Parses v1 memory.oom_control. */
export function parseOomControl(text: string): OomControl {
  const values = parseFlatKeyed(text);
  return {
    oomKillDisable: values.get("oom_kill_disable") === 1,
    underOom: values.get("under_oom") === 1,
    oomKill: values.get("oom_kill") ?? 0,
  };
}

/**
 * v1 counters from memory.oom_control and memory.failcnt. v1 has no low/high events and no OOM counter:
 * `max` is failcnt (times usage hit the limit) and `oom` is approximated by oom_kill, since a v1 OOM ends in a
 * kill unless oom_kill_disable is set.
 */
export function v1MemoryCounters(oomControlText: string, failcntText: string): MemoryCounters {
  const { oomKill } = parseOomControl(oomControlText);
  return { ...ZERO, max: Number(failcntText) || 0, oom: oomKill, oom_kill: oomKill };
}

/** Fields that grew from `previous` to `next`, as differences; undefined if nothing changed. A counter
 *  that went down was reset (v1 failcnt can be written to) and counts from zero. */
export function memoryEventDelta(previous: MemoryCounters, next: MemoryCounters): MemoryEvent | undefined {
  const event: MemoryEvent = {};
  let changed = false;
  for (const field of FIELDS) {
    const delta = next[field] >= previous[field] ? next[field] - previous[field] : next[field];
    if (delta > 0) {
      event[field] = delta;
      changed = true;
    }
  }
  return changed ? event : undefined;
}

export interface MemoryEventWatcher {
  /** Stops watching; no callback runs after the returned promise resolves. */
  stop(): Promise<void>;
}

export interface WatchOptions {
  /** Poll interval of the v1 fallback. Default 100 ms. */
  pollMs?: number;
}

/** Reads the current counters, or undefined if the cgroup (or the memory controller) is not there. */
export async function readMemoryCounters(
  layout: CgroupLayout,
  cgroupPath: string,
): Promise<MemoryCounters | undefined> {
  const mount = layout.controllers.get("memory");
  const dir = controllerDir(layout, "memory", cgroupPath);
  if (mount === undefined || dir === undefined) return undefined;
  if (mount.version === 2) {
    const text = await readOptionalText(`${dir}/memory.events`);
    return text === undefined ? undefined : parseMemoryEvents(text);
  }
  const [oomControl, failcnt] = await Promise.all([
    readOptionalText(`${dir}/memory.oom_control`),
    readOptionalText(`${dir}/memory.failcnt`),
  ]);
  return oomControl === undefined || failcnt === undefined
    ? undefined
    : v1MemoryCounters(oomControl, failcnt);
}

/** How many tasks of the cgroup the OOM killer has killed; read it before removing the cgroup. */
export async function readOomKillCount(layout: CgroupLayout, cgroupPath: string): Promise<number> {
  return (await readMemoryCounters(layout, cgroupPath))?.oom_kill ?? 0;
}

/** True if the OOM killer killed a task of the cgroup since `baseline` (0 for a cgroup made for one run). */
export async function wasOomKilled(layout: CgroupLayout, cgroupPath: string, baseline = 0): Promise<boolean> {
  return (await readOomKillCount(layout, cgroupPath)) > baseline;
}

/**
 * Watches a cgroup's memory events. With the memory controller on cgroup2, memory.events is watched with
 * inotify (the kernel signals a modification on every change). On v1 the kernel notifies only through an
 * eventfd registered in cgroup.event_control, which Node cannot create; until the native monitor owns that,
 * v1 uses watchMemoryEventsByPolling.
 */
export async function watchMemoryEvents(
  layout: CgroupLayout,
  cgroupPath: string,
  onEvent: (event: MemoryEvent) => void,
  options: WatchOptions = {},
): Promise<MemoryEventWatcher> {
  const mount = layout.controllers.get("memory");
  if (mount === undefined) throw new Error("this host has no memory controller");
  if (mount.version === 1) return watchMemoryEventsByPolling(layout, cgroupPath, onEvent, options);
  return watchMemoryEventsV2(layout, cgroupPath, onEvent);
}

// INVARIANTS (both watchers): at most one read of the counters is in flight; `previous` is only updated by
// that read; once stopped, no callback is made.
class CounterTracker {
  private previous: MemoryCounters;
  private reading: Promise<void> = Promise.resolve();
  private stopped = false;
  private rereadRequested = false;

  constructor(
    baseline: MemoryCounters,
    private readonly read: () => Promise<MemoryCounters | undefined>,
    private readonly onEvent: (event: MemoryEvent) => void,
  ) {
    this.previous = baseline;
  }

  /** Re-reads the counters (coalescing requests that arrive while a read is running). */
  check(): Promise<void> {
    if (this.stopped) return this.reading;
    this.rereadRequested = true;
    this.reading = this.reading.then(async () => {
      if (!this.rereadRequested || this.stopped) return;
      this.rereadRequested = false;
      const next = await this.read().catch(() => undefined); // cgroup removed under us: nothing to report
      if (next === undefined || this.stopped) return;
      const event = memoryEventDelta(this.previous, next);
      this.previous = next;
      if (event !== undefined) this.onEvent(event);
    });
    return this.reading;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.reading;
  }
}

async function baselineOf(layout: CgroupLayout, cgroupPath: string): Promise<MemoryCounters> {
  const baseline = await readMemoryCounters(layout, cgroupPath);
  if (baseline === undefined) throw new Error(`cgroup ${cgroupPath} has no memory controller files`);
  return baseline;
}

async function watchMemoryEventsV2(
  layout: CgroupLayout,
  cgroupPath: string,
  onEvent: (event: MemoryEvent) => void,
): Promise<MemoryEventWatcher> {
  const tracker = new CounterTracker(
    await baselineOf(layout, cgroupPath),
    () => readMemoryCounters(layout, cgroupPath),
    onEvent,
  );
  const watcher: FSWatcher = watch(
    `${controllerDir(layout, "memory", cgroupPath)}/memory.events`,
    () => void tracker.check(),
  );
  watcher.on("error", () => watcher.close()); // the cgroup was removed
  return {
    async stop() {
      watcher.close();
      await tracker.stop();
    },
  };
}

/** The v1 fallback: polls memory.oom_control and memory.failcnt every `pollMs` (default 100 ms). */
export async function watchMemoryEventsByPolling(
  layout: CgroupLayout,
  cgroupPath: string,
  onEvent: (event: MemoryEvent) => void,
  options: WatchOptions = {},
): Promise<MemoryEventWatcher> {
  const tracker = new CounterTracker(
    await baselineOf(layout, cgroupPath),
    () => readMemoryCounters(layout, cgroupPath),
    onEvent,
  );
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const poll = (): void => {
    timer = setTimeout(() => {
      void tracker.check().then(() => {
        if (!stopped) poll();
      });
    }, options.pollMs ?? 100);
  };
  poll();
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await tracker.stop();
    },
  };
}
