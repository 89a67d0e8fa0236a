/**
 * `--json` prints the response the daemon sent, not one the CLI rebuilds: a console on a real
 * Unix socket answers with members the CLI never builds itself (Skiff's `reason` and `oom` in an
 * exit status, `started_by`, statistics), and the printed line must be that response.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { runCli } from "../../../src/cli/main.js";
import { decodeMessage, encodeMessage } from "../../../src/protocol/codec.js";
import type { Request, Response } from "../../../src/protocol/messages.js";

const C = "web:0.0.1";

/** The canned answer to each request the commands below send. */
function answer(request: Request): Response {
  switch (request.type) {
    case "stop":
      return {
        type: "stop",
        result: {
          type: "ok",
          container: C,
          status: { type: "signalled", signal: 9, reason: "shutdown", oom: true },
        },
      };
    case "inspect":
      return {
        type: "inspect",
        result: {
          type: "ok",
          container: C,
          data: {
            manifest: { name: "web", version: "0.0.1" },
            repository: "default",
            mounted: true,
            process: {
              pid: 42,
              uptime: 7,
              statistics: { pids: { current: 1, limit: null } },
              started_by: "request",
            },
            state: "running",
          },
        },
      };
    case "pause":
      return { type: "pause", result: { type: "ok", container: C } };
    default:
      return { type: "error", error: { type: "unsupported", request: request.type } };
  }
}

describe("skiff --json", () => {
  let dir: string;
  let server: Server;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "skiff-json-"));
    server = createServer((socket) => {
      let buffered = "";
      socket.on("data", (chunk) => {
        buffered += chunk.toString("utf8");
        for (let nl = buffered.indexOf("\n"); nl >= 0; nl = buffered.indexOf("\n")) {
          const message = decodeMessage(buffered.slice(0, nl));
          buffered = buffered.slice(nl + 1);
          if (message.type === "connect") socket.write(encodeMessage({ type: "connect_ack" }));
          if (message.type === "request") {
            socket.write(encodeMessage({ type: "response", response: answer(message.request) }));
          }
        }
      });
      socket.on("error", () => socket.destroy());
    });
    await new Promise<void>((resolve) => server.listen(join(dir, "console.sock"), resolve));
  });
  after(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await rm(dir, { recursive: true, force: true });
  });

  for (const [command, request] of [
    ["stop", { type: "stop", container: C }],
    ["inspect", { type: "inspect", container: C }],
    ["pause", { type: "pause", container: C }],
  ] as const) {
    it(`${command} prints the daemon's response line`, async () => {
      const out: string[] = [];
      const err: string[] = [];
      const url = `unix://${join(dir, "console.sock")}`;
      const code = await runCli(["-u", url, "-t", "10", "--json", command, C], {
        out: (l) => out.push(l),
        err: (l) => err.push(l),
      });
      assert.equal(code, 0, err.join("\n"));
      assert.deepEqual(out, [encodeMessage({ type: "response", response: answer(request) }).trimEnd()]);
    });
  }
});
