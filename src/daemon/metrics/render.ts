// Prometheus text exposition format (version 0.0.4) of a MetricsSnapshot. Pure; docs/metrics.md lists
// every metric.
import type { ProcessStatistics } from "../cgroups/process-statistics.js";
import type { LoopDelay } from "./loop-delay.js";
import { START_LATENCY_BUCKETS, type CounterSnapshot } from "./counters.js";

export interface ContainerMetrics {
  /** "name:version". */
  container: string;
  name: string;
  version: string;
  /** What `inspect` shows as `process.statistics` (CgroupSupervisor.stats). */
  statistics: ProcessStatistics;
}

/** What the daemon hands over for one scrape. */
export interface MetricsSnapshot {
  /** Running containers. */
  containers: ContainerMetrics[];
  /** Installed containers by lifecycle state (`installed`, `mounted`, `running`, ...). */
  containersByState: Record<string, number>;
  /** Events the daemon's state owner has processed since it started. */
  eventsProcessed: number;
  /** Open console connections. */
  consoleConnections: number;
  /** The event loop's timer delay; the server adds it (its families have no sample without it). */
  eventLoopDelay?: LoopDelay;
  /** The daemon's counters (counters.ts); their families are written only when present. */
  counters?: CounterSnapshot;
}

export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

type Kind = "gauge" | "counter" | "summary" | "histogram";
type ContainerValue = (s: ProcessStatistics) => number | null | undefined;

const NS_PER_SECOND = 1e9;

// Per-container families, in output order. A sample is left out when its value is null or undefined
// (controller missing, or no limit set).
const CONTAINER_FAMILIES: [string, Kind, string, ContainerValue][] = [
  ["memory_usage_bytes", "gauge", "Memory in use.", (s) => s.memory?.usage],
  ["memory_peak_bytes", "gauge", "Highest memory use seen.", (s) => s.memory?.peak],
  ["memory_limit_bytes", "gauge", "Memory limit (absent when unlimited).", (s) => s.memory?.limit],
  ["memory_swap_bytes", "gauge", "Memory swapped out.", (s) => s.memory?.swap],
  [
    "cpu_usage_seconds_total",
    "counter",
    "CPU time used.",
    (s) => (s.cpu === undefined ? undefined : s.cpu.usage_ns / NS_PER_SECOND),
  ],
  ["cpu_periods_total", "counter", "CFS enforcement periods elapsed.", (s) => s.cpu?.periods],
  [
    "cpu_throttled_periods_total",
    "counter",
    "CFS periods in which the container was throttled.",
    (s) => s.cpu?.throttled_periods,
  ],
  [
    "cpu_throttled_seconds_total",
    "counter",
    "Time the container was throttled.",
    (s) => (s.cpu === undefined ? undefined : s.cpu.throttled_ns / NS_PER_SECOND),
  ],
  ["pids", "gauge", "Tasks in the container.", (s) => s.pids?.current],
  ["pids_limit", "gauge", "Task limit (absent when unlimited).", (s) => s.pids?.limit],
  ["io_read_bytes_total", "counter", "Bytes read from block devices.", (s) => s.io?.read_bytes],
  ["io_write_bytes_total", "counter", "Bytes written to block devices.", (s) => s.io?.write_bytes],
  ["io_reads_total", "counter", "Read operations on block devices.", (s) => s.io?.read_ops],
  ["io_writes_total", "counter", "Write operations on block devices.", (s) => s.io?.write_ops],
];

const escapeLabel = (value: string): string =>
  value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");

function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}

function labels(pairs: [string, string][]): string {
  return `{${pairs.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(",")}}`;
}

function family(lines: string[], name: string, kind: Kind, help: string): void {
  lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${kind}`);
}

/** The snapshot as Prometheus text: every family with HELP and TYPE, containers and states sorted. */
export function renderMetrics(snapshot: MetricsSnapshot): string {
  const lines: string[] = [];
  const containers = [...snapshot.containers].sort((a, b) => a.container.localeCompare(b.container));
  for (const [suffix, kind, help, value] of CONTAINER_FAMILIES) {
    const name = `skiff_container_${suffix}`;
    family(lines, name, kind, help);
    for (const c of containers) {
      const v = value(c.statistics);
      if (v === null || v === undefined) continue;
      const id: [string, string][] = [
        ["container", c.container],
        ["name", c.name],
        ["version", c.version],
      ];
      lines.push(`${name}${labels(id)} ${formatValue(v)}`);
    }
  }
  family(lines, "skiff_containers", "gauge", "Installed containers by state.");
  for (const state of Object.keys(snapshot.containersByState).sort()) {
    lines.push(
      `skiff_containers${labels([["state", state]])} ${formatValue(snapshot.containersByState[state]!)}`,
    );
  }
  family(lines, "skiff_events_processed_total", "counter", "Events processed by the daemon.");
  lines.push(`skiff_events_processed_total ${formatValue(snapshot.eventsProcessed)}`);
  family(lines, "skiff_console_connections", "gauge", "Open console connections.");
  lines.push(`skiff_console_connections ${formatValue(snapshot.consoleConnections)}`);
  renderLoopDelay(lines, snapshot.eventLoopDelay);
  if (snapshot.counters) renderCounters(lines, snapshot.counters);
  return `${lines.join("\n")}\n`;
}

/** The id labels of a container id "name:version". */
function idLabels(container: string): [string, string][] {
  const colon = container.lastIndexOf(":");
  return [
    ["container", container],
    ["name", container.slice(0, colon)],
    ["version", container.slice(colon + 1)],
  ];
}

const sortedKeys = <V>(map: ReadonlyMap<string, V>): string[] => [...map.keys()].sort();

function renderCounters(lines: string[], counters: CounterSnapshot): void {
  const perContainer: [string, string, ReadonlyMap<string, number>][] = [
    [
      "skiff_container_oom_kills_total",
      "Exits of the container's instances killed by the OOM killer.",
      counters.oomKills,
    ],
    [
      "skiff_container_suspends_total",
      "Suspends of the container that ended (it woke up).",
      counters.suspends,
    ],
    [
      "skiff_container_suspend_seconds_total",
      "Time the container spent suspended, counted when it woke.",
      counters.suspendSeconds,
    ],
  ];
  for (const [name, help, values] of perContainer) {
    family(lines, name, "counter", help);
    for (const c of sortedKeys(values))
      lines.push(`${name}${labels(idLabels(c))} ${formatValue(values.get(c)!)}`);
  }
  const wakes = "skiff_container_wakes_total";
  family(
    lines,
    wakes,
    "counter",
    "Wake-ups of the container by reason (a wake with two reasons counts for both).",
  );
  for (const c of sortedKeys(counters.wakes)) {
    const byReason = counters.wakes.get(c)!;
    for (const reason of sortedKeys(byReason)) {
      lines.push(
        `${wakes}${labels([...idLabels(c), ["reason", reason]])} ${formatValue(byReason.get(reason)!)}`,
      );
    }
  }
  const start = "skiff_container_start_seconds";
  const h = counters.startLatency;
  family(
    lines,
    start,
    "histogram",
    "Time from a start step to the container running (prepared starts included).",
  );
  START_LATENCY_BUCKETS.forEach((bound, i) =>
    lines.push(`${start}_bucket${labels([["le", String(bound)]])} ${formatValue(h.buckets[i]!)}`),
  );
  lines.push(
    `${start}_bucket${labels([["le", "+Inf"]])} ${formatValue(h.count)}`,
    `${start}_sum ${formatValue(h.sum)}`,
    `${start}_count ${formatValue(h.count)}`,
  );
}

function renderLoopDelay(lines: string[], delay: LoopDelay | undefined): void {
  const name = "skiff_event_loop_delay_seconds";
  family(lines, name, "summary", "Time between two ticks of the event loop's delay timer, since start.");
  if (delay) {
    lines.push(
      `${name}${labels([["quantile", "0.5"]])} ${formatValue(delay.p50Seconds)}`,
      `${name}${labels([["quantile", "0.99"]])} ${formatValue(delay.p99Seconds)}`,
      `${name}_sum ${formatValue(delay.sumSeconds)}`,
      `${name}_count ${formatValue(delay.count)}`,
    );
  }
  family(
    lines,
    "skiff_event_loop_delay_max_seconds",
    "gauge",
    "Longest time between two ticks since start: the longest loop stall plus at most one resolution.",
  );
  if (delay) lines.push(`skiff_event_loop_delay_max_seconds ${formatValue(delay.maxSeconds)}`);
  family(
    lines,
    "skiff_event_loop_delay_recent_max_seconds",
    "gauge",
    "Longest time between two ticks in the last 10 to 20 s.",
  );
  if (delay) lines.push(`skiff_event_loop_delay_recent_max_seconds ${formatValue(delay.recentMaxSeconds)}`);
  family(
    lines,
    "skiff_event_loop_delay_resolution_seconds",
    "gauge",
    "Interval of the delay timer; an idle loop reads about this much.",
  );
  if (delay) lines.push(`skiff_event_loop_delay_resolution_seconds ${formatValue(delay.resolutionSeconds)}`);
}
