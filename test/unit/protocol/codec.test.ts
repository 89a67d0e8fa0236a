import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DecodeError, decodeMessage, encodeMessage } from "../../../src/protocol/codec.js";
import type { Message } from "../../../src/protocol/messages.js";

const C = "hello-world:0.0.1";

/** Golden wire strings for Northstar's shapes: our encoder must produce exactly these. */
const GOLDEN: [string, Message][] = [
  [
    `{"connect":{"version":"0.9.2","subscribe_notifications":true}}`,
    { type: "connect", connect: { version: "0.9.2", subscribe_notifications: true } },
  ],
  [`{"connect_ack":null}`, { type: "connect_ack" }],
  [
    `{"connect_nack":{"invalid_protocol_version":{"version":"0.9.2"}}}`,
    { type: "connect_nack", nack: { type: "invalid_protocol_version", version: "0.9.2" } },
  ],
  [`{"connect_nack":"permission_denied"}`, { type: "connect_nack", nack: { type: "permission_denied" } }],
  [`{"request":"list"}`, { type: "request", request: { type: "list" } }],
  [`{"response":{"list":["${C}"]}}`, { type: "response", response: { type: "list", containers: [C] } }],
  [
    `{"request":{"start":{"container":"${C}","init":null,"arguments":[],"environment":{}}}}`,
    { type: "request", request: { type: "start", container: C, init: null, arguments: [], environment: {} } },
  ],
  [
    `{"response":{"start":{"ok":{"container":"${C}"}}}}`,
    { type: "response", response: { type: "start", result: { type: "ok", container: C } } },
  ],
  [
    `{"response":{"inspect":{"error":{"container":"${C}","error":{"invalid_container":{"container":"${C}"}}}}}}`,
    {
      type: "response",
      response: {
        type: "inspect",
        result: { type: "error", container: C, error: { type: "invalid_container", container: C } },
      },
    },
  ],
  [
    `{"response":{"permission_denied":"shutdown"}}`,
    { type: "response", response: { type: "permission_denied", request: { type: "shutdown" } } },
  ],
  [
    `{"response":{"permission_denied":{"kill":{"container":"${C}","signal":15}}}}`,
    {
      type: "response",
      response: { type: "permission_denied", request: { type: "kill", container: C, signal: 15 } },
    },
  ],
  [
    `{"notification":{"started":"${C}"}}`,
    { type: "notification", notification: { type: "started", container: C } },
  ],
  [
    `{"notification":{"exit":["${C}",{"exit":{"code":0}}]}}`,
    { type: "notification", notification: { type: "exit", container: C, status: { type: "exit", code: 0 } } },
  ],
  [
    `{"notification":{"exit":["${C}",{"signalled":{"signal":9}}]}}`,
    {
      type: "notification",
      notification: { type: "exit", container: C, status: { type: "signalled", signal: 9 } },
    },
  ],
  [
    `{"notification":{"c_group":["${C}",{"memory":{"low":null,"high":null,"max":null,"oom":1,"oom_kill":1}}]}}`,
    {
      type: "notification",
      notification: {
        type: "c_group",
        container: C,
        memory: { low: null, high: null, max: null, oom: 1, oom_kill: 1 },
      },
    },
  ],
  [`{"notification":"shutdown"}`, { type: "notification", notification: { type: "shutdown" } }],
  [
    `{"notification":{"install":"${C}"}}`,
    { type: "notification", notification: { type: "install", container: C } },
  ],
  [`{"response":"shutdown"}`, { type: "response", response: { type: "shutdown" } }],
  [
    `{"response":{"repositories":["default","mem"]}}`,
    { type: "response", response: { type: "repositories", repositories: ["default", "mem"] } },
  ],
  [
    `{"response":{"ident":"extern:0.0.0"}}`,
    { type: "response", response: { type: "ident", container: "extern:0.0.0" } },
  ],
];

/** Every other shape, for round trips. */
const MORE: Message[] = [
  { type: "request", request: { type: "ident" } },
  { type: "request", request: { type: "inspect", container: C } },
  { type: "request", request: { type: "install", repository: "default", size: 1234 } },
  { type: "request", request: { type: "mount", containers: [C, "b:1.0.0"] } },
  { type: "request", request: { type: "umount", containers: [C] } },
  { type: "request", request: { type: "uninstall", container: C, wipe: true } },
  { type: "request", request: { type: "repositories" } },
  { type: "request", request: { type: "shutdown" } },
  {
    type: "request",
    request: {
      type: "start",
      container: C,
      init: "/bin/sh",
      arguments: ["-c", "x"],
      environment: { A: "b" },
    },
  },
  { type: "request", request: { type: "token_create", target: "t", shared: "AAEC" } },
  { type: "request", request: { type: "token_verify", token: "AAEC", user: "u", shared: "" } },
  { type: "response", response: { type: "install", result: { type: "ok", container: C } } },
  {
    type: "response",
    response: {
      type: "install",
      result: { type: "error", error: { type: "invalid_repository", repository: "x" } },
    },
  },
  {
    type: "response",
    response: {
      type: "kill",
      result: { type: "error", container: C, error: { type: "stop_container_not_started", container: C } },
    },
  },
  {
    type: "response",
    response: {
      type: "mount",
      results: [
        { type: "ok", container: C },
        { type: "error", container: "b:1.0.0", error: { type: "mount_busy", container: "b:1.0.0" } },
      ],
    },
  },
  { type: "response", response: { type: "umount", results: [] } },
  { type: "response", response: { type: "uninstall", result: { type: "ok", container: C } } },
  { type: "response", response: { type: "token", token: "AAEC" } },
  { type: "response", response: { type: "token_verification", result: "Expired" } },
  {
    type: "response",
    response: {
      type: "inspect",
      result: {
        type: "ok",
        container: C,
        data: {
          manifest: { name: "hello-world" },
          repository: "r",
          mounted: true,
          process: { pid: 7, uptime: 5, statistics: {} },
          state: "running",
        },
      },
    },
  },
  {
    type: "response",
    response: {
      type: "error",
      error: {
        type: "critical_container",
        container: C,
        status: { type: "signalled", signal: 9, reason: "shutdown", oom: true },
      },
    },
  },
  {
    type: "response",
    response: {
      type: "error",
      error: { type: "start_container_missing_resource", container: C, resource: "r", version: ">=1" },
    },
  },
  { type: "response", response: { type: "error", error: { type: "unsupported", request: "start" } } },
  { type: "notification", notification: { type: "uninstall", container: C } },
  { type: "notification", notification: { type: "lagged", missed: 3 } },
  {
    type: "notification",
    notification: { type: "exit", container: C, status: { type: "exit", code: 255, reason: "reboot" } },
  },
];

describe("codec", () => {
  for (const [wire, message] of GOLDEN) {
    it(`golden ${wire.slice(0, 60)}`, () => {
      assert.equal(encodeMessage(message), wire + "\n");
      assert.deepEqual(decodeMessage(wire), message);
    });
  }

  it("round trips every other message shape", () => {
    for (const message of MORE) assert.deepEqual(decodeMessage(encodeMessage(message)), message);
  });

  it("accepts serde's map form of unit variants and surrounding white space", () => {
    assert.deepEqual(decodeMessage(` {"request":{"list":null}}\r`), {
      type: "request",
      request: { type: "list" },
    });
  });

  it("fills Northstar's optional start fields", () => {
    assert.deepEqual(decodeMessage(`{"request":{"start":{"container":"${C}"}}}`), {
      type: "request",
      request: { type: "start", container: C, init: null, arguments: [], environment: {} },
    });
  });

  const bad: [string, RegExp][] = [
    ["{not json", /malformed JSON/],
    [`"list"`, /one message key/],
    [`{"request":"frobnicate"}`, /request: unknown request "frobnicate"/],
    [`{"request":{"kill":{"container":"${C}","signal":9,"extra":1}}}`, /request\.kill\.extra: unknown field/],
    [`{"request":{"kill":{"container":"${C}"}}}`, /request\.kill\.signal: missing field/],
    [`{"request":{"inspect":{"container":"no version"}}}`, /request\.inspect\.container: .*name:version/],
    [`{"request":{"inspect":{"container":"a/b:1.0.0"}}}`, /invalid character/],
    [
      `{"request":{"install":{"repository":"r","size":-1}}}`,
      /request\.install\.size: expected a non-negative integer/,
    ],
    [`{"request":{"list":null},"response":"shutdown"}`, /expected one message variant, got 2 keys/],
    [
      `{"request":{"start":{"container":"${C}","arguments":["a\\u0000b"]}}}`,
      /arguments\[0\]: string contains a NUL/,
    ],
    [`{"connect":{"version":1}}`, /connect\.version: expected a string/],
  ];
  for (const [line, reason] of bad) {
    it(`rejects ${line.slice(0, 50)}`, () => {
      assert.throws(
        () => decodeMessage(line),
        (e: unknown) => e instanceof DecodeError && reason.test(e.message),
      );
    });
  }
});
