/**
 * contrib/grafana/skiff.json names only metrics a running skiffd exports: every `skiff_*` name in
 * a panel's or variable's query is a family of a real scrape (a histogram's or summary's
 * `_bucket`, `_sum`, `_count` count as their family). A started container also gives the start
 * latency histogram its first sample.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { ContainerHarness } from "../../helpers/containers.js";
import { PACKAGE_ROOT } from "../../helpers/daemon.js";

/** Every PromQL expression of the dashboard: panel targets and query variables. */
function queriesOf(dashboard: unknown): string[] {
  const found: string[] = [];
  const walk = (value: unknown, key?: string): void => {
    if (typeof value === "string") {
      if (key === "expr" || key === "query" || key === "definition") found.push(value);
    } else if (Array.isArray(value)) value.forEach((v) => walk(v));
    else if (value !== null && typeof value === "object")
      for (const [k, v] of Object.entries(value)) walk(v, k);
  };
  walk(dashboard);
  return found;
}

/** Families of a scrape by `# TYPE`, with the series names each one exports. */
function exportedNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const line of text.split("\n")) {
    const m = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (!m) continue;
    const [, name, kind] = m as unknown as [string, string, string];
    names.add(name);
    if (kind === "histogram") for (const s of ["_bucket", "_sum", "_count"]) names.add(name + s);
    if (kind === "summary") for (const s of ["_sum", "_count"]) names.add(name + s);
  }
  return names;
}

describe("the Grafana dashboard", () => {
  let h: ContainerHarness;
  let id: string;
  let port: number;
  before(async () => {
    h = await ContainerHarness.create();
    id = await h.add(h.name("quick"), "/bin/true", []);
    await h.startDaemon(`[metrics]\nurl = "tcp://127.0.0.1:0"\n`);
    await h.waitForDaemonLog(/metrics on http:\/\/127\.0\.0\.1:\d+\/metrics/);
    port = Number(/metrics on http:\/\/127\.0\.0\.1:(\d+)\/metrics/.exec(h.log)![1]);
  });
  after(async () => {
    await h.close();
  });

  it("names only metrics that a running skiffd exports", async () => {
    const from = h.notifications.length;
    await h.client.start(id);
    await h.waitForExit(id, from);
    const scrape = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const exported = exportedNames(scrape);
    const dashboard: unknown = JSON.parse(
      await readFile(join(PACKAGE_ROOT, "contrib/grafana/skiff.json"), "utf8"),
    );
    const queries = queriesOf(dashboard);
    assert.ok(queries.length >= 15, `queries found: ${queries.length}`);
    const named = new Set(queries.flatMap((q) => q.match(/\bskiff_[a-z0-9_]+/g) ?? []));
    for (const wanted of [
      "skiff_containers",
      "skiff_container_memory_usage_bytes",
      "skiff_container_memory_limit_bytes",
      "skiff_container_oom_kills_total",
      "skiff_container_suspend_seconds_total",
      "skiff_container_wakes_total",
      "skiff_container_start_seconds_bucket",
    ])
      assert.ok(named.has(wanted), `the dashboard shows ${wanted}`);
    const missing = [...named].filter((n) => !exported.has(n));
    assert.deepEqual(missing, [], `named by the dashboard, not exported:\n${scrape}`);
    // The start above is one sample of the start latency histogram.
    const count = /^skiff_container_start_seconds_count (\S+)$/m.exec(scrape);
    assert.ok(count && Number(count[1]) >= 1, scrape);
  });
});
