import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConfigError, EMBEDDED_DEFAULT_CONFIG, parseConfig } from "../../../src/daemon/config/load.js";
import { MAX_CONTAINERS } from "../../../src/daemon/config/schema.js";

describe("config: resources (max_containers, oom_monitor_all, groups, metrics)", () => {
  it("defaults: 16384 containers, no oom_monitor_all, no groups, metrics off", () => {
    const c = parseConfig(EMBEDDED_DEFAULT_CONFIG);
    assert.equal(c.maxContainers, 16384);
    assert.equal(MAX_CONTAINERS, 16384);
    assert.equal(c.oomMonitorAll, false);
    assert.deepEqual(c.groups, []);
    assert.equal(c.metrics, undefined);
  });

  it("reads groups with their limits, the daemon limit, the switch and the metrics listener", () => {
    const c = parseConfig(`
      max_containers = 100
      oom_monitor_all = true
      [groups.gate]
      memory = "64M"
      cpu_shares = 512
      cpu_quota = 50000
      cpu_period = 100000
      pids = 200
      max_containers = 8
      [groups.small]
      cpu_weight = 50
      [metrics]
      url = "tcp://127.0.0.1:9100"
    `);
    assert.equal(c.maxContainers, 100);
    assert.equal(c.oomMonitorAll, true);
    assert.deepEqual(c.groups, [
      {
        name: "gate",
        memory: 64 * 1024 * 1024,
        cpuShares: 512,
        cpuQuota: 50000,
        cpuPeriod: 100000,
        pids: 200,
        maxContainers: 8,
      },
      { name: "small", cpuWeight: 50 },
    ]);
    assert.deepEqual(c.metrics, { host: "127.0.0.1", port: 9100 });
  });

  it("accepts the maximum itself and an IPv6 metrics listener", () => {
    const c = parseConfig(`max_containers = 16384\n[metrics]\nurl = "tcp://[::1]:0"`);
    assert.equal(c.maxContainers, 16384);
    assert.deepEqual(c.metrics, { host: "::1", port: 0 });
  });

  const bad: [string, RegExp][] = [
    [`max_containers = 16385`, /^config: max_containers: must be between 1 and 16384$/],
    [`max_containers = 0`, /^config: max_containers: must be between 1 and 16384$/],
    [`max_containers = "many"`, /^config: max_containers: expected a non-negative integer/],
    [`oom_monitor_all = "yes"`, /^config: oom_monitor_all: expected a boolean/],
    [
      `[groups.g]\nmax_containers = 20000`,
      /^config: groups\.g\.max_containers: must be between 1 and 16384$/,
    ],
    [`[groups.g]\nmemory = "lots"`, /^config: groups\.g\.memory: expected a size/],
    [`[groups.g]\nmemory = 0`, /^config: groups\.g\.memory: must be greater than 0$/],
    [`[groups.g]\ncpu_shares = 1`, /^config: groups\.g\.cpu_shares: must be between 2 and 262144$/],
    [`[groups.g]\ncpu_weight = 10001`, /^config: groups\.g\.cpu_weight: must be between 1 and 10000$/],
    [
      `[groups.g]\ncpu_shares = 100\ncpu_weight = 10`,
      /^config: groups\.g\.cpu_weight: give cpu_shares or cpu_weight, not both$/,
    ],
    [`[groups.g]\ncpu_quota = 999`, /^config: groups\.g\.cpu_quota: must be between 1000 and/],
    [`[groups.g]\ncpu_period = 2000000`, /^config: groups\.g\.cpu_period: must be between 1000 and 1000000$/],
    [`[groups.g]\npids = 0`, /^config: groups\.g\.pids: must be greater than 0$/],
    [`[groups.g]\nswap = 1`, /^config: groups\.g\.swap: unknown field$/],
    [`[groups."a:b"]\npids = 1`, /^config: groups\.a:b: group name must not contain ":"/],
    [`[groups."-g"]\npids = 1`, /^config: groups\.-g: group name must be a single cgroup name/],
    [`[groups."memory.x"]\npids = 1`, /^config: groups\.memory\.x: group name would collide/],
    [`[metrics]\nurl = "unix:///run/m.sock"`, /^config: metrics\.url: expected a tcp:\/\/host:port URL$/],
    [`[metrics]\nurl = "tcp://localhost"`, /^config: metrics\.url: tcp:\/\/ URLs need a host and a port/],
    [`[metrics]`, /^config: metrics\.url: missing field$/],
  ];
  for (const [text, message] of bad) {
    it(`rejects ${JSON.stringify(text)}`, () => {
      assert.throws(
        () => parseConfig(text),
        (e: unknown) => e instanceof ConfigError && message.test(e.message),
      );
    });
  }
});
