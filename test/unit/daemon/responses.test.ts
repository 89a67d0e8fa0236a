import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  containerError,
  containerResponse,
  inspectResponse,
  type InspectView,
} from "../../../src/daemon/responses.js";

const C = "hello:0.0.1";

const view = (process: InspectView["process"]): InspectView => ({
  container: C,
  data: { manifest: { name: "hello" }, repository: "default", mounted: true, state: "running" },
  process,
});

describe("responses", () => {
  it("join an inspect view and the statistics the executor read", () => {
    const statistics = { pids: { current: 2, limit: null } };
    assert.deepEqual(inspectResponse(view({ pid: 7, uptime: 5 }), statistics), {
      type: "inspect",
      result: {
        type: "ok",
        container: C,
        data: { ...view(null).data, process: { pid: 7, uptime: 5, statistics } },
      },
    });
  });

  it("answer an inspect with empty statistics when none were read, and no process when none runs", () => {
    const running = inspectResponse(view({ pid: 7, uptime: 5 }));
    assert.ok(running.type === "inspect" && running.result.type === "ok");
    assert.deepEqual(running.result.data.process?.statistics, {});
    const stopped = inspectResponse(view(null));
    assert.ok(stopped.type === "inspect" && stopped.result.type === "ok");
    assert.equal(stopped.result.data.process, null);
  });

  it("build ok and error results naming the container", () => {
    assert.deepEqual(containerResponse("kill", C), { type: "kill", result: { type: "ok", container: C } });
    const error = { type: "invalid_container" as const, container: C };
    assert.deepEqual(containerError("logs", C, error), {
      type: "logs",
      result: { type: "error", container: C, error },
    });
  });
});
