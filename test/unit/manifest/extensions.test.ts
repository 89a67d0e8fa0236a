import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isDuration, parseDuration, parseManifest } from "../../../src/npk/manifest/index.js";
import { satisfiesRequirement } from "../../../src/npk/manifest/index.js";
import { assertRejected, BASE } from "./helpers.js";

void describe("parseDuration", () => {
  void it("parses single and compound durations", () => {
    assert.equal(parseDuration("500ms"), 500);
    assert.equal(parseDuration("5s"), 5000);
    assert.equal(parseDuration("1m"), 60_000);
    assert.equal(parseDuration("2h"), 7_200_000);
    assert.equal(parseDuration("1m30s"), 90_000);
    assert.equal(parseDuration("0s"), 0);
  });

  void it("rejects malformed durations", () => {
    for (const text of ["", "5", "s", "1.5s", "5 s", "-1s", "5sec", "1d"]) {
      assert.equal(isDuration(text), false, text);
      assert.throws(() => parseDuration(text), RangeError);
    }
  });
});

void describe("resource version requirements", () => {
  void it("follow Rust semver: bare versions are caret requirements", () => {
    assert.equal(satisfiesRequirement("1.4.0", ">=1.0.0"), true);
    assert.equal(satisfiesRequirement("0.0.1", ">=0.0.2"), false);
    assert.equal(satisfiesRequirement("1.9.0", "1.2.3"), true);
    assert.equal(satisfiesRequirement("2.0.0", "1.2.3"), false);
    assert.equal(satisfiesRequirement("1.5.0", ">=1.0, <2"), true);
  });
});

void describe("Skiff manifest extensions", () => {
  const FULL = `${BASE}restart:
  policy: on-failure
  max_retries: 3
  backoff:
    initial: 500ms
    max: 1m
stop_timeout: 5s
prepare: true
group: media
cgroups:
  pids:
    max: 64
power:
  idle_suspend_after: 30s
  proxies:
    - name: api
      listen: /run/skiff/api.sock
      target: /run/api.sock
      framing: length
    - name: events
      listen: /run/skiff/events.sock
      target: /run/events.sock
`;

  void it("parses every extension", () => {
    const m = parseManifest(FULL);
    assert.deepEqual(m.restart, {
      policy: "on-failure",
      max_retries: 3,
      backoff: { initial: "500ms", max: "1m" },
    });
    assert.equal(m.stop_timeout, "5s");
    assert.equal(m.prepare, true);
    assert.equal(m.group, "media");
    assert.deepEqual(m.cgroups, { pids: { max: 64 } });
    assert.equal(m.power!.idle_suspend_after, "30s");
    assert.deepEqual(m.power!.proxies![0], {
      name: "api",
      listen: "/run/skiff/api.sock",
      target: "/run/api.sock",
      framing: "length",
    });
    assert.equal(m.power!.proxies![1]!.framing, undefined);
  });

  void it("validates extensions with field paths", () => {
    assertRejected(BASE + "restart:\n  policy: sometimes\n", "restart.policy");
    assertRejected(
      BASE + "restart:\n  policy: always\n  backoff:\n    initial: 1m\n    max: 1s\n",
      "restart.backoff",
      /exceed/,
    );
    assertRejected(
      BASE + "restart:\n  policy: always\n  backoff:\n    initial: soon\n    max: 1s\n",
      "restart.backoff.initial",
    );
    assertRejected(BASE + "stop_timeout: 5\n", "stop_timeout", /invalid duration/);
    assertRejected(BASE + "prepare: yes\n", "prepare", /boolean/);
    assertRejected(BASE + "group: a b\n", "group", /invalid group name/);
    assertRejected(BASE + "cgroups:\n  pids:\n    max: 0\n", "cgroups.pids.max");
    assertRejected(BASE + "power:\n  idle_suspend_after: later\n", "power.idle_suspend_after");
    const proxy = "    - name: p\n      listen: /a\n      target: /b\n";
    assertRejected(BASE + "power:\n  proxies:\n" + proxy + proxy, "power.proxies.1.name", /duplicate/);
    assertRejected(BASE + "power:\n  proxies:\n" + proxy + "      framing: xml\n", "power.proxies.0.framing");
  });
});
