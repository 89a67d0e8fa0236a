import { test } from "node:test";
import assert from "node:assert/strict";
import { request } from "node:http";
import { pino } from "pino";
import { startMetricsServer } from "../../../src/daemon/metrics/server.js";
import type { MetricsSnapshot } from "../../../src/daemon/metrics/render.js";

const silent = pino({ level: "silent" });

function get(
  port: number,
  path: string,
  method = "GET",
): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, method }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk));
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, type: res.headers["content-type"] ?? "", body }),
      );
    });
    req.on("error", reject);
    req.end();
  });
}

// One sample line of the text format: name, optional labels, value.
const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$/;

function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("# HELP ") || line.startsWith("# TYPE ")) continue;
    const match = SAMPLE.exec(line);
    assert.ok(match, `not a sample line: ${line}`);
    out.set(`${match[1]}${match[2] ?? ""}`, Number(match[3]));
  }
  return out;
}

void test("metrics server: GET /metrics renders what collect() returns, per scrape", async () => {
  let scrapes = 0;
  const collect = (): Promise<MetricsSnapshot> =>
    Promise.resolve({
      containers: [
        {
          container: "hello:0.0.1",
          name: "hello",
          version: "0.0.1",
          statistics: {
            memory: { usage: 1234, peak: 2000, limit: 4096, anon: 0, file: 0, swap: 0, stat: {} },
          },
        },
      ],
      containersByState: { running: 1 },
      eventsProcessed: ++scrapes,
      consoleConnections: 2,
    });
  const server = await startMetricsServer({ host: "127.0.0.1", port: 0, collect, log: silent });
  try {
    assert.ok(server.address.port > 0);
    const first = await get(server.address.port, "/metrics");
    assert.equal(first.status, 200);
    assert.equal(first.type, "text/plain; version=0.0.4; charset=utf-8");
    const values = samples(first.body);
    const id = '{container="hello:0.0.1",name="hello",version="0.0.1"}';
    assert.equal(values.get(`skiff_container_memory_usage_bytes${id}`), 1234);
    assert.equal(values.get(`skiff_container_memory_limit_bytes${id}`), 4096);
    assert.equal(values.get('skiff_containers{state="running"}'), 1);
    assert.equal(values.get("skiff_events_processed_total"), 1);
    assert.equal(values.get("skiff_console_connections"), 2);
    const second = samples((await get(server.address.port, "/metrics")).body);
    assert.equal(second.get("skiff_events_processed_total"), 2);
  } finally {
    await server.close();
  }
});

void test("metrics server: 404 for other paths and methods, 500 when collect fails", async () => {
  let fail = false;
  const collect = (): Promise<MetricsSnapshot> =>
    fail
      ? Promise.reject(new Error("state owner gone"))
      : Promise.resolve({ containers: [], containersByState: {}, eventsProcessed: 0, consoleConnections: 0 });
  const server = await startMetricsServer({ host: "127.0.0.1", port: 0, collect, log: silent });
  try {
    const { port } = server.address;
    assert.equal((await get(port, "/")).status, 404);
    assert.equal((await get(port, "/metrics/x")).status, 404);
    assert.equal((await get(port, "/metrics", "POST")).status, 404);
    assert.equal((await get(port, "/metrics?format=text")).status, 200);
    fail = true;
    assert.equal((await get(port, "/metrics")).status, 500);
  } finally {
    await server.close();
  }
});

void test("metrics server: a taken port is refused with the address in the message", async () => {
  const collect = (): Promise<MetricsSnapshot> =>
    Promise.resolve({ containers: [], containersByState: {}, eventsProcessed: 0, consoleConnections: 0 });
  const first = await startMetricsServer({ host: "127.0.0.1", port: 0, collect, log: silent });
  try {
    const port = first.address.port;
    await assert.rejects(
      startMetricsServer({ host: "127.0.0.1", port, collect, log: silent }),
      new RegExp(`^Error: metrics: cannot listen on tcp://127\\.0\\.0\\.1:${port}: EADDRINUSE$`),
    );
  } finally {
    await first.close();
  }
});

void test("metrics server: a blocked event loop shows in skiff_event_loop_delay_max_seconds", async () => {
  const collect = (): Promise<MetricsSnapshot> =>
    Promise.resolve({ containers: [], containersByState: {}, eventsProcessed: 0, consoleConnections: 0 });
  const server = await startMetricsServer({ host: "127.0.0.1", port: 0, collect, log: silent });
  try {
    const before = samples((await get(server.address.port, "/metrics")).body);
    assert.equal(before.get("skiff_event_loop_delay_resolution_seconds"), 0.01);
    // Let the delay timer tick, then hold the loop for 150 ms: the gap between two ticks spans it.
    await new Promise((resolve) => setTimeout(resolve, 50));
    const blockedUntil = performance.now() + 150;
    while (performance.now() < blockedUntil) {
      // busy: nothing else runs on this loop meanwhile
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
    const after = samples((await get(server.address.port, "/metrics")).body);
    assert.ok(after.get("skiff_event_loop_delay_max_seconds")! >= 0.15, JSON.stringify([...after]));
    assert.ok(after.get("skiff_event_loop_delay_seconds_count")! > 0);
  } finally {
    await server.close();
  }
});
