import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  initialPower,
  initialState,
  withContainer,
  type ContainerRecord,
  type RuntimeState,
} from "../../../src/daemon/state/model.js";
import {
  checkpointFailed,
  checkpointRequest,
  containerCheckpointed,
  restoreRequest,
} from "../../../src/daemon/state/checkpoint.js";
import { containerStarted, containerStartFailed } from "../../../src/daemon/state/containers.js";
import type { Step } from "../../../src/daemon/events/steps.js";
import { exitIsFinal } from "../../../src/daemon/state/lifecycle.js";
import type { InstalledPackage } from "../../../src/daemon/repository/repository.js";
import type { Npk } from "../../../src/npk/npk.js";
import type { Response } from "../../../src/protocol/messages.js";

const C = "svc:1.0.0";
const OVERRIDES = { init: null, arguments: ["-c", "count"], environment: {} };

function state(withProcess = true): RuntimeState {
  const npk = {
    path: "/x.npk",
    manifest: { name: "svc", version: "1.0.0", init: "/bin/sh" },
  } as unknown as Npk;
  const pkg: InstalledPackage = { repository: "r", npk, size: 1 };
  const record: ContainerRecord = {
    id: C,
    pkg,
    ...(withProcess
      ? {
          process: {
            phase: "running" as const,
            pid: 42,
            startedAt: 0,
            startedBy: "request" as const,
            overrides: OVERRIDES,
            resources: [],
            stopReplies: [],
            stopRequested: false,
            power: initialPower(0),
          },
        }
      : {}),
  };
  return withContainer(initialState([]), record);
}

function answers(steps: Step[]): Response[] {
  return steps.flatMap((s) => (s.type === "reply_to" ? [s.response] : []));
}

const reply = (): void => undefined;

describe("checkpoint and restore transitions", () => {
  it("a running container goes to checkpointing; the step carries the reply; its exit is final (no restart)", () => {
    const t = checkpointRequest(state(), C, reply);
    const process = t.state.containers.get(C)!.process!;
    assert.equal(process.phase, "checkpointing");
    assert.equal(exitIsFinal(process), true);
    assert.deepEqual(
      t.steps.map((s) => s.type),
      ["checkpoint_container"],
    );
  });

  it("refuses containers that do not run, are paused or are being checkpointed already", () => {
    assert.equal(
      (answers(checkpointRequest(state(false), C, reply).steps)[0] as { result: { error: { type: string } } })
        .result.error.type,
      "stop_container_not_started",
    );
    const s = state();
    const paused = withContainer(s, {
      ...s.containers.get(C)!,
      process: { ...s.containers.get(C)!.process!, power: { ...initialPower(0), state: "paused" } },
    });
    for (const from of [paused, checkpointRequest(state(), C, reply).state]) {
      const t = checkpointRequest(from, C, reply);
      assert.equal(t.state, from, "state unchanged");
      const [answer] = answers(t.steps);
      assert.ok(answer?.type === "checkpoint" && answer.result.type === "error");
      assert.equal(answer.result.error.type, "invalid_arguments");
    }
  });

  it("a completed checkpoint stops the container without an exit notification and keeps the overrides for the restore", () => {
    const during = checkpointRequest(state(), C, reply).state;
    const t = containerCheckpointed(during, C, reply, 1234);
    const record = t.state.containers.get(C)!;
    assert.equal(record.process, undefined);
    assert.deepEqual(record.checkpoint, { overrides: OVERRIDES, at: 1234 });
    assert.ok(t.steps.some((s) => s.type === "cleanup_container"));
    assert.ok(!t.steps.some((s) => s.type === "notify"), "no exit notification");
    assert.deepEqual(answers(t.steps), [{ type: "checkpoint", result: { type: "ok", container: C } }]);
  });

  it("a failed checkpoint leaves the container running and answers the error", () => {
    const during = checkpointRequest(state(), C, reply).state;
    const t = checkpointFailed(during, C, { type: "unsupported", request: "checkpoint: criu" }, reply);
    const process = t.state.containers.get(C)!.process!;
    assert.equal(process.phase, "running");
    assert.equal(process.stopRequested, false);
    const [answer] = answers(t.steps);
    assert.ok(answer?.type === "checkpoint" && answer.result.type === "error");
    assert.equal(answer.result.error.type, "unsupported");
  });

  it("restore starts from the image with the checkpointed overrides; running uses the checkpoint up", () => {
    assert.equal(
      (answers(restoreRequest(state(false), C, reply, 0).steps)[0] as { result: { error: { type: string } } })
        .result.error.type,
      "invalid_arguments",
      "no checkpoint",
    );
    const checkpointed = containerCheckpointed(checkpointRequest(state(), C, reply).state, C, reply, 1).state;
    const t = restoreRequest(checkpointed, C, reply, 2);
    const start = t.steps.find((s) => s.type === "start_container");
    assert.ok(start?.type === "start_container");
    assert.equal(start.restore, true);
    assert.deepEqual(start.overrides, OVERRIDES);
    const process = t.state.containers.get(C)!.process!;
    assert.equal(process.startedBy, "restore");
    assert.equal(process.restoring, true);

    const started = containerStarted(t.state, {
      type: "container_started",
      container: C,
      pid: 7,
      startedAt: 3,
      cgroupPath: "/sys/fs/cgroup/x",
    });
    assert.equal(started.state.containers.get(C)!.checkpoint, undefined);
    assert.ok(started.steps.some((s) => s.type === "discard_checkpoint"));
    assert.deepEqual(answers(started.steps), [{ type: "restore", result: { type: "ok", container: C } }]);

    // A failed restore keeps the checkpoint and answers `restore`.
    const failed = containerStartFailed(t.state, {
      type: "container_start_failed",
      container: C,
      error: "x",
    });
    assert.ok(failed.state.containers.get(C)!.checkpoint);
    const [answer] = answers(failed.steps);
    assert.ok(answer?.type === "restore" && answer.result.type === "error");
  });
});
