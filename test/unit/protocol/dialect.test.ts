import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { decodeMessage } from "../../../src/protocol/codec.js";
import { encodeFor, northstarManifest, northstarStatistics } from "../../../src/protocol/dialect.js";
import type {
  Message,
  Notification,
  NotificationType,
  Request,
  Response,
  ResponseType,
  WireError,
  WireErrorType,
} from "../../../src/protocol/messages.js";
import { decodeNorthstarLine } from "../../helpers/northstar-strict.js";

const C = "hello-world:0.0.1";
const health = { status: "degraded" as const, problems: ["runc is gone"] };
const power = {
  state: "awake" as const,
  sequence: 1,
  locks: [],
  sources: [],
  counters: {},
  last_suspend: null,
};
const skiffExit = { type: "exit" as const, code: 3, reason: "shutdown" as const, oom: false };

/** One sample of every error variant, with Skiff's fields where it has them. */
const ERRORS: Record<WireErrorType, WireError> = {
  configuration: { type: "configuration", context: "x" },
  duplicate_container: { type: "duplicate_container", container: C },
  invalid_container: { type: "invalid_container", container: C },
  invalid_arguments: { type: "invalid_arguments", cause: "x" },
  mount_busy: { type: "mount_busy", container: C },
  umount_busy: { type: "umount_busy", container: C },
  start_container_started: { type: "start_container_started", container: C },
  start_container_resource: { type: "start_container_resource", container: C },
  start_container_missing_resource: {
    type: "start_container_missing_resource",
    container: C,
    resource: "r",
    version: "1",
  },
  start_container_failed: { type: "start_container_failed", container: C, error: "x" },
  stop_container_not_started: { type: "stop_container_not_started", container: C },
  invalid_repository: { type: "invalid_repository", repository: "r" },
  install_duplicate: { type: "install_duplicate", container: C },
  critical_container: { type: "critical_container", container: C, status: skiffExit },
  unexpected: { type: "unexpected", error: "x" },
  unsupported: { type: "unsupported", request: "frobnicate" },
  limit_reached: { type: "limit_reached", container: C, limit: "max_containers", max: 4 },
  wake_locks_exist: { type: "wake_locks_exist", container: C },
  suspend_failure: { type: "suspend_failure", container: C, error: "frozen" },
  executor_degraded: { type: "executor_degraded", problems: ["runc is gone"] },
  exec_failed: { type: "exec_failed", container: C, error: "paused" },
};

/** Every notification; undefined in the second place: it has no Northstar form. */
const NOTIFICATIONS: Record<NotificationType, [Notification, string | undefined]> = {
  c_group: [
    {
      type: "c_group",
      container: C,
      memory: { low: 0, high: 0, max: 1, oom: 1, oom_kill: 1, oom_group_kill: 1 },
    },
    `{"notification":{"c_group":["${C}",{"memory":{"low":0,"high":0,"max":1,"oom":1,"oom_kill":1}}]}}`,
  ],
  exit: [
    { type: "exit", container: C, status: { ...skiffExit, oom: true }, instance: "abc-1" },
    `{"notification":{"exit":["${C}",{"exit":{"code":3}}]}}`,
  ],
  install: [{ type: "install", container: C }, `{"notification":{"install":"${C}"}}`],
  shutdown: [{ type: "shutdown" }, `{"notification":"shutdown"}`],
  started: [{ type: "started", container: C }, `{"notification":{"started":"${C}"}}`],
  uninstall: [{ type: "uninstall", container: C }, `{"notification":{"uninstall":"${C}"}}`],
  restarted: [{ type: "restarted", container: C }, `{"notification":{"started":"${C}"}}`],
  power: [{ type: "power", container: C, state: "asleep", sequence: 1, time_ms: 1 }, undefined],
  health: [{ type: "health", health }, undefined],
  lagged: [{ type: "lagged", missed: 3 }, undefined],
};

const manifest = {
  name: "hello-world",
  version: "0.0.1",
  uid: 1000,
  gid: 1000,
  init: "/bin/sh",
  console: { permissions: ["ident", "inspect", "wake_lock", "health"] },
  cgroups: { memory: { oom_monitor: true }, pids: { max: 10 } },
  restart: { policy: "always" },
  stop_timeout: "3s",
  prepare: true,
  group: "g",
  power: { idle_suspend_after: "1s" },
};
const statistics = {
  memory: { usage: 10, peak: 20, limit: null, anon: 1, file: 2, swap: 0, stat: { anon: 1 } },
  cpu: { usage_ns: 5000, periods: 1, throttled_periods: 0, throttled_ns: 0 },
  pids: { current: 1, limit: null },
  io: { read_bytes: 1, write_bytes: 2, read_ops: 3, write_ops: 4 },
};
const result = { type: "error" as const, container: C, error: ERRORS.limit_reached };

/** Every response, with the request it answers; undefined: closes a Northstar connection. */
const RESPONSES: Record<ResponseType, [Response, Request, boolean]> = {
  ident: [{ type: "ident", container: C }, { type: "ident" }, true],
  inspect: [
    {
      type: "inspect",
      result: {
        type: "ok",
        container: C,
        data: {
          manifest,
          repository: "default",
          mounted: true,
          process: { pid: 1, uptime: 1, statistics, started_by: "request" },
          state: "running",
          power,
        },
      },
    },
    { type: "inspect", container: C },
    true,
  ],
  install: [
    { type: "install", result: { type: "error", error: ERRORS.unsupported } },
    { type: "install", repository: "default", size: 1 },
    true,
  ],
  kill: [{ type: "kill", result }, { type: "kill", container: C, signal: 15 }, true],
  list: [{ type: "list", containers: [C] }, { type: "list" }, true],
  mount: [{ type: "mount", results: [result] }, { type: "mount", containers: [C] }, true],
  permission_denied: [{ type: "permission_denied", request: { type: "list" } }, { type: "list" }, true],
  repositories: [{ type: "repositories", repositories: ["default"] }, { type: "repositories" }, true],
  shutdown: [{ type: "shutdown" }, { type: "shutdown" }, true],
  start: [
    { type: "start", result },
    { type: "start", container: C, init: null, arguments: [], environment: {} },
    true,
  ],
  token: [{ type: "token", token: "AAAA" }, { type: "token_create", target: "t", shared: "" }, true],
  token_verification: [
    { type: "token_verification", result: "Ok" },
    { type: "token_verify", token: "AAAA", user: "u", shared: "" },
    true,
  ],
  umount: [{ type: "umount", results: [result] }, { type: "umount", containers: [C] }, true],
  uninstall: [{ type: "uninstall", result }, { type: "uninstall", container: C, wipe: false }, true],
  error: [
    { type: "error", error: ERRORS.executor_degraded },
    { type: "start", container: C, init: null, arguments: [], environment: {} },
    true,
  ],
  stop: [
    { type: "stop", result: { type: "ok", container: C, status: skiffExit } },
    { type: "stop", container: C },
    false,
  ],
  logs: [
    { type: "logs", result: { type: "ok", container: C, lines: [], offset: 0 } },
    { type: "logs", container: C },
    false,
  ],
  pause: [{ type: "pause", result }, { type: "pause", container: C }, false],
  resume: [{ type: "resume", result }, { type: "resume", container: C }, false],
  suspend: [
    { type: "suspend", result: { type: "ok", container: C, suspend_time: 1, resume_reason: "x" } },
    { type: "suspend", container: C },
    false,
  ],
  wake_lock: [{ type: "wake_lock", result }, { type: "wake_lock_acquire", container: C, name: "n" }, false],
  wake_source: [
    { type: "wake_source", result },
    { type: "remove_wake_source", container: C, name: "n" },
    false,
  ],
  proxy: [{ type: "proxy", result }, { type: "proxy_handled", container: C, name: "n" }, false],
  power: [
    { type: "power", result: { type: "ok", container: C, power } },
    { type: "power", container: C },
    false,
  ],
  prepare: [{ type: "prepare", result }, { type: "prepare", container: C }, false],
  health: [{ type: "health", health }, { type: "health" }, false],
  checkpoint: [{ type: "checkpoint", result }, { type: "checkpoint", container: C }, false],
  restore: [{ type: "restore", result }, { type: "restore", container: C }, false],
  exec: [
    { type: "exec", result: { type: "ok", container: C, pid: 42 } },
    {
      type: "exec",
      container: C,
      command: ["sh"],
      environment: {},
      cwd: null,
      uid: null,
      gid: null,
      tty: true,
      stdin: true,
    },
    false,
  ],
  statistics: [
    { type: "statistics", containers: [{ container: C, statistics }] },
    { type: "statistics", containers: [C] },
    false,
  ],
};

describe("the Northstar dialect", () => {
  for (const [type, [notification, expected]] of Object.entries(NOTIFICATIONS)) {
    it(`projects the ${type} notification`, () => {
      const line = encodeFor("northstar", { type: "notification", notification });
      assert.equal(line?.trimEnd(), expected);
      if (line) decodeNorthstarLine(line);
      // The Skiff dialect keeps everything.
      const skiff = encodeFor("skiff", { type: "notification", notification });
      assert.deepEqual(decodeMessage(skiff!), { type: "notification", notification });
    });
  }

  for (const [type, [response, request, hasForm]] of Object.entries(RESPONSES)) {
    it(`projects the ${type} response`, () => {
      const line = encodeFor("northstar", { type: "response", response }, request);
      assert.equal(line !== undefined, hasForm);
      if (line) decodeNorthstarLine(line);
      const skiff = encodeFor("skiff", { type: "response", response }, request);
      assert.deepEqual(decodeMessage(skiff!), { type: "response", response });
    });
  }

  for (const [type, error] of Object.entries(ERRORS)) {
    it(`maps the ${type} error to a Northstar one, keeping its reason`, () => {
      const line = encodeFor("northstar", {
        type: "response",
        response: { type: "kill", result: { type: "error", container: C, error } },
      });
      const decoded = decodeNorthstarLine(line!) as { response: { kill: { error: { error: unknown } } } };
      const text = JSON.stringify(decoded.response.kill.error.error);
      for (const v of Object.values(error)) {
        if (typeof v === "string" && v !== type && v !== C) assert.ok(text.includes(v), `${text} lacks ${v}`);
      }
    });
  }

  it("a Skiff error response without a Northstar result shape has no form", () => {
    assert.equal(
      encodeFor("northstar", { type: "response", response: { type: "error", error: ERRORS.unexpected } }),
      undefined,
    );
    assert.equal(
      encodeFor(
        "northstar",
        { type: "response", response: { type: "error", error: ERRORS.unexpected } },
        { type: "list" },
      ),
      undefined,
    );
  });

  it("reduces the manifest to Northstar's fields and permissions", () => {
    assert.deepEqual(northstarManifest(manifest), {
      name: "hello-world",
      version: "0.0.1",
      uid: 1000,
      gid: 1000,
      init: "/bin/sh",
      console: { permissions: ["ident", "inspect"] },
      cgroups: { memory: { oom_monitor: true } },
    });
  });

  it("puts the statistics under Northstar's keys", () => {
    const s = northstarStatistics(statistics) as Record<string, Record<string, unknown>>;
    assert.deepEqual(Object.keys(s).sort(), ["blkio", "cpu", "memory"]);
    assert.deepEqual(Object.keys(s.memory!).sort(), ["kmem", "kmem_tcp", "memory"]);
    assert.match(s.cpu!.stat as string, /^usage_usec 5$/m);
  });

  it("connect and connect_ack read the same in both dialects", () => {
    const connect: Message = {
      type: "connect",
      connect: { version: "0.9.2", subscribe_notifications: true, dialect: "skiff" },
    };
    decodeNorthstarLine(encodeFor("northstar", connect)!);
    decodeNorthstarLine(encodeFor("northstar", { type: "connect_ack" })!);
    assert.deepEqual(decodeMessage(encodeFor("skiff", connect)!), connect);
  });
});
