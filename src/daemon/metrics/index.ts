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
export { startMetricsServer, type MetricsServer, type MetricsServerOptions } from "./server.js";
export {
  LoopDelayMonitor,
  LoopDelayWindows,
  DEFAULT_LOOP_DELAY_RESOLUTION_MS,
  LOOP_DELAY_WINDOW_MS,
  type LoopDelay,
} from "./loop-delay.js";
