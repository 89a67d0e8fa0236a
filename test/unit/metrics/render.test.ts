import { test } from "node:test";
import assert from "node:assert/strict";
import { renderMetrics, type MetricsSnapshot } from "../../../src/daemon/metrics/render.js";

const SNAPSHOT: MetricsSnapshot = {
  containers: [
    {
      container: "web:1.0.0",
      name: "web",
      version: "1.0.0",
      statistics: {
        memory: {
          usage: 4096,
          peak: 8192,
          limit: null,
          anon: 1024,
          file: 2048,
          swap: 0,
          stat: { anon: 1024 },
        },
        cpu: { usage_ns: 1_500_000_000, periods: 10, throttled_periods: 2, throttled_ns: 250_000_000 },
        pids: { current: 3, limit: null },
        io: { read_bytes: 512, write_bytes: 1024, read_ops: 1, write_ops: 2 },
      },
    },
    {
      container: 'a"b:0.1.0',
      name: 'a"b',
      version: "0.1.0",
      statistics: {
        memory: { usage: 100, peak: null, limit: 33554432, anon: 0, file: 0, swap: 0, stat: {} },
        pids: { current: 1, limit: 50 },
      },
    },
  ],
  containersByState: { running: 2, installed: 5, mounted: 0 },
  eventsProcessed: 42,
  consoleConnections: 3,
  eventLoopDelay: {
    resolutionSeconds: 0.01,
    count: 1000,
    sumSeconds: 10.5,
    p50Seconds: 0.0101,
    p99Seconds: 0.0125,
    maxSeconds: 0.25,
    recentMaxSeconds: 0.05,
  },
};

// Checked by hand against the text format: unlimited and unknown values have no sample, containers and
// states are sorted, quotes in label values are escaped, nanoseconds become seconds.
const GOLDEN = String.raw`
# HELP skiff_container_memory_usage_bytes Memory in use.
# TYPE skiff_container_memory_usage_bytes gauge
skiff_container_memory_usage_bytes{container="a\"b:0.1.0",name="a\"b",version="0.1.0"} 100
skiff_container_memory_usage_bytes{container="web:1.0.0",name="web",version="1.0.0"} 4096
# HELP skiff_container_memory_peak_bytes Highest memory use seen.
# TYPE skiff_container_memory_peak_bytes gauge
skiff_container_memory_peak_bytes{container="web:1.0.0",name="web",version="1.0.0"} 8192
# HELP skiff_container_memory_limit_bytes Memory limit (absent when unlimited).
# TYPE skiff_container_memory_limit_bytes gauge
skiff_container_memory_limit_bytes{container="a\"b:0.1.0",name="a\"b",version="0.1.0"} 33554432
# HELP skiff_container_memory_swap_bytes Memory swapped out.
# TYPE skiff_container_memory_swap_bytes gauge
skiff_container_memory_swap_bytes{container="a\"b:0.1.0",name="a\"b",version="0.1.0"} 0
skiff_container_memory_swap_bytes{container="web:1.0.0",name="web",version="1.0.0"} 0
# HELP skiff_container_cpu_usage_seconds_total CPU time used.
# TYPE skiff_container_cpu_usage_seconds_total counter
skiff_container_cpu_usage_seconds_total{container="web:1.0.0",name="web",version="1.0.0"} 1.5
# HELP skiff_container_cpu_periods_total CFS enforcement periods elapsed.
# TYPE skiff_container_cpu_periods_total counter
skiff_container_cpu_periods_total{container="web:1.0.0",name="web",version="1.0.0"} 10
# HELP skiff_container_cpu_throttled_periods_total CFS periods in which the container was throttled.
# TYPE skiff_container_cpu_throttled_periods_total counter
skiff_container_cpu_throttled_periods_total{container="web:1.0.0",name="web",version="1.0.0"} 2
# HELP skiff_container_cpu_throttled_seconds_total Time the container was throttled.
# TYPE skiff_container_cpu_throttled_seconds_total counter
skiff_container_cpu_throttled_seconds_total{container="web:1.0.0",name="web",version="1.0.0"} 0.25
# HELP skiff_container_pids Tasks in the container.
# TYPE skiff_container_pids gauge
skiff_container_pids{container="a\"b:0.1.0",name="a\"b",version="0.1.0"} 1
skiff_container_pids{container="web:1.0.0",name="web",version="1.0.0"} 3
# HELP skiff_container_pids_limit Task limit (absent when unlimited).
# TYPE skiff_container_pids_limit gauge
skiff_container_pids_limit{container="a\"b:0.1.0",name="a\"b",version="0.1.0"} 50
# HELP skiff_container_io_read_bytes_total Bytes read from block devices.
# TYPE skiff_container_io_read_bytes_total counter
skiff_container_io_read_bytes_total{container="web:1.0.0",name="web",version="1.0.0"} 512
# HELP skiff_container_io_write_bytes_total Bytes written to block devices.
# TYPE skiff_container_io_write_bytes_total counter
skiff_container_io_write_bytes_total{container="web:1.0.0",name="web",version="1.0.0"} 1024
# HELP skiff_container_io_reads_total Read operations on block devices.
# TYPE skiff_container_io_reads_total counter
skiff_container_io_reads_total{container="web:1.0.0",name="web",version="1.0.0"} 1
# HELP skiff_container_io_writes_total Write operations on block devices.
# TYPE skiff_container_io_writes_total counter
skiff_container_io_writes_total{container="web:1.0.0",name="web",version="1.0.0"} 2
# HELP skiff_containers Installed containers by state.
# TYPE skiff_containers gauge
skiff_containers{state="installed"} 5
skiff_containers{state="mounted"} 0
skiff_containers{state="running"} 2
# HELP skiff_events_processed_total Events processed by the daemon.
# TYPE skiff_events_processed_total counter
skiff_events_processed_total 42
# HELP skiff_console_connections Open console connections.
# TYPE skiff_console_connections gauge
skiff_console_connections 3
# HELP skiff_event_loop_delay_seconds Time between two ticks of the event loop's delay timer, since start.
# TYPE skiff_event_loop_delay_seconds summary
skiff_event_loop_delay_seconds{quantile="0.5"} 0.0101
skiff_event_loop_delay_seconds{quantile="0.99"} 0.0125
skiff_event_loop_delay_seconds_sum 10.5
skiff_event_loop_delay_seconds_count 1000
# HELP skiff_event_loop_delay_max_seconds Longest time between two ticks since start: the longest loop stall plus at most one resolution.
# TYPE skiff_event_loop_delay_max_seconds gauge
skiff_event_loop_delay_max_seconds 0.25
# HELP skiff_event_loop_delay_recent_max_seconds Longest time between two ticks in the last 10 to 20 s.
# TYPE skiff_event_loop_delay_recent_max_seconds gauge
skiff_event_loop_delay_recent_max_seconds 0.05
# HELP skiff_event_loop_delay_resolution_seconds Interval of the delay timer; an idle loop reads about this much.
# TYPE skiff_event_loop_delay_resolution_seconds gauge
skiff_event_loop_delay_resolution_seconds 0.01
`.slice(1);

void test("renderMetrics: golden text of a snapshot with two containers", () => {
  assert.equal(renderMetrics(SNAPSHOT), GOLDEN);
});

void test("renderMetrics: an empty daemon still has every family and the daemon figures", () => {
  const text = renderMetrics({
    containers: [],
    containersByState: {},
    eventsProcessed: 0,
    consoleConnections: 0,
  });
  const families = text.split("\n").filter((line) => line.startsWith("# TYPE "));
  assert.equal(families.length, 21);
  assert.ok(
    text.includes(
      "skiff_events_processed_total 0\n# HELP skiff_console_connections Open console connections.\n# TYPE skiff_console_connections gauge\nskiff_console_connections 0\n",
    ),
  );
  // Without a loop delay (as collect() returns it) the loop families have no sample.
  assert.ok(!/^skiff_event_loop_delay/m.test(text));
});

void test("renderMetrics: backslashes and newlines in label values; non-finite numbers", () => {
  const text = renderMetrics({
    containers: [],
    containersByState: { "odd\\state\nx": Number.NaN, big: Infinity },
    eventsProcessed: 1,
    consoleConnections: 0,
  });
  assert.ok(text.includes('skiff_containers{state="big"} +Inf\n'));
  assert.ok(text.includes('skiff_containers{state="odd\\\\state\\nx"} NaN\n'));
});

void test("renderMetrics: a loop delay before its first sample has NaN quantiles and a zero count", () => {
  const text = renderMetrics({
    containers: [],
    containersByState: {},
    eventsProcessed: 0,
    consoleConnections: 0,
    eventLoopDelay: {
      resolutionSeconds: 0.01,
      count: 0,
      sumSeconds: 0,
      p50Seconds: Number.NaN,
      p99Seconds: Number.NaN,
      maxSeconds: 0,
      recentMaxSeconds: 0,
    },
  });
  assert.ok(text.includes('skiff_event_loop_delay_seconds{quantile="0.99"} NaN\n'));
  assert.ok(text.includes("skiff_event_loop_delay_seconds_count 0\n"));
  assert.ok(text.includes("skiff_event_loop_delay_max_seconds 0\n"));
});
