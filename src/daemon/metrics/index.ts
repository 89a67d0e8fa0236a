// Prometheus metrics of the daemon and its containers (docs/metrics.md).
export {
  renderMetrics,
  METRICS_CONTENT_TYPE,
  type MetricsSnapshot,
  type ContainerMetrics,
} from "./render.js";
export {
  DaemonCounters,
  START_LATENCY_BUCKETS,
  type CounterSnapshot,
  type Histogram,
  type LastSuspend,
} from "./counters.js";
// The server itself (node:http, about 3 MiB of a daemon's RSS) is loaded only when metrics are configured:
// `await import("./server.js")` (runtime.ts); its types are free to import.
export type { MetricsServer, MetricsServerOptions } from "./server.js";
export {
  LoopDelayMonitor,
  LoopDelayWindows,
  DEFAULT_LOOP_DELAY_RESOLUTION_MS,
  LOOP_DELAY_WINDOW_MS,
  type LoopDelay,
} from "./loop-delay.js";
