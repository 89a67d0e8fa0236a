/**
 * The instance lifecycle (state/lifecycle.ts) as a table: every phase × every event, allowed and
 * refused (after runc's state_linux_test.go), then the transitions of state/ checked against it,
 * and the rules built on top: restart policy and backoff, critical containers, reboot, stop
 * joining, prepared supersede and the start checks. Pure: no kernel, no clock.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  LIFECYCLE_EVENTS,
  PHASES,
  nextPhase,
  type InstancePhase,
  type LifecycleEvent,
  type Phase,
} from "../../../src/daemon/state/lifecycle.js";
import {
  initialPower,
  initialState,
  withContainer,
  type ContainerRecord,
  type ProcessRecord,
  type RuntimeState,
} from "../../../src/daemon/state/model.js";
import {
  containerExited,
  containerStarted,
  containerStartFailed,
  killRequest,
  prepareContainer,
  restartDelay,
  restartDue,
  startRequest,
  stopRequest,
} from "../../../src/daemon/state/containers.js";
import { adopted, containerPrepared } from "../../../src/daemon/state/prepare.js";
import {
  checkpointFailed,
  checkpointRequest,
  containerCheckpointed,
} from "../../../src/daemon/state/checkpoint.js";
import { pauseRequest } from "../../../src/daemon/state/power.js";
import { mountRequest, mountsDone, preparedDiscarded } from "../../../src/daemon/state/packages.js";
import type { Step } from "../../../src/daemon/events/steps.js";
import type { InstalledPackage } from "../../../src/daemon/repository/repository.js";
import type { Manifest } from "../../../src/npk/manifest/index.js";
import type { Npk } from "../../../src/npk/npk.js";
import type { ExitStatus, Response } from "../../../src/protocol/messages.js";

const C = "svc:1.0.0";
const NOW = 1_000_000;
const noReply = (): void => undefined;

function pkgOf(manifest: Partial<Manifest> & { name: string; version: string }): InstalledPackage {
  const npk = { path: "/x.npk", manifest: { init: "/bin/sh", ...manifest } } as unknown as Npk;
  return { repository: "r", npk, size: 1 };
}

function processIn(phase: Phase, more: Partial<ProcessRecord> = {}): ProcessRecord {
  return {
    phase,
    ...(phase === "preparing" || phase === "starting" ? {} : { pid: 42, startedAt: 0 }),
    startedBy: "request",
    overrides: { init: null, arguments: [], environment: {} },
    resources: [],
    stopReplies: [],
    stopRequested: false,
    power: initialPower(0),
    ...more,
  };
}

/** A state with container C (manifest `extra`) in `phase`; "none": installed, no instance. */
function stateIn(
  phase: InstancePhase,
  extra: Partial<Manifest> = {},
  more: Partial<ProcessRecord> = {},
): RuntimeState {
  const record: ContainerRecord = {
    id: C,
    pkg: pkgOf({ name: "svc", version: "1.0.0", ...extra }),
    ...(phase === "none" ? {} : { process: processIn(phase, more) }),
  };
  return withContainer(initialState([]), record);
}

const phaseIn = (s: RuntimeState, id = C): InstancePhase => s.containers.get(id)?.process?.phase ?? "none";
const answers = (steps: Step[]): Response[] =>
  steps.flatMap((s) => (s.type === "reply_to" || s.type === "reply" ? [s.response] : []));
const types = (steps: Step[]): string[] => steps.map((s) => s.type);
const errorOf = (t: Step[] | { steps: Step[] }): string | undefined => {
  const r = answers(Array.isArray(t) ? t : t.steps)[0] as
    | { result?: { type?: string; error?: { type: string } } }
    | undefined;
  return r?.result?.type === "error" ? r.result.error?.type : undefined;
};

// ---------------------------------------------------------------------------------------------
// the table itself: written out here, so a change to lifecycle.ts must change this too

const EXPECTED: Record<LifecycleEvent, Partial<Record<InstancePhase, InstancePhase>>> = {
  prepare: { none: "preparing" },
  start: { none: "starting", preparing: "starting", prepared: "starting" },
  created: { preparing: "prepared" },
  started: { starting: "running", stopping: "stopping" },
  start_failed: { preparing: "none", starting: "none", stopping: "none" },
  stop: {
    preparing: "stopping",
    prepared: "stopping",
    starting: "stopping",
    running: "stopping",
    stopping: "stopping",
    checkpointing: "stopping",
  },
  kill: {
    preparing: "preparing",
    prepared: "prepared",
    starting: "starting",
    running: "running",
    stopping: "stopping",
    checkpointing: "checkpointing",
  },
  exit: {
    preparing: "none",
    prepared: "none",
    starting: "none",
    running: "none",
    stopping: "none",
    checkpointing: "none",
  },
  checkpoint: { running: "checkpointing" },
  checkpointed: { checkpointing: "none", stopping: "none" },
  checkpoint_failed: { checkpointing: "running", stopping: "stopping" },
  discarded: { preparing: "none", prepared: "none", stopping: "none" },
  adopt_running: { none: "running" },
  adopt_prepared: { none: "prepared" },
};

describe("lifecycle table", () => {
  for (const event of LIFECYCLE_EVENTS) {
    for (const from of PHASES) {
      const expected = EXPECTED[event][from];
      it(`${event} from ${from}: ${expected === undefined ? "refused" : `→ ${expected}`}`, () => {
        assert.equal(nextPhase(from, event), expected);
      });
    }
  }
});

// ---------------------------------------------------------------------------------------------
// the transitions of state/ against the table, phase by phase

const EXIT: ExitStatus = { type: "exit", code: 0 };

describe("transitions follow the table", () => {
  for (const from of PHASES) {
    it(`start from ${from}`, () => {
      const t = startRequest(
        stateIn(from),
        { type: "start", container: C, arguments: [], environment: {}, init: null },
        noReply,
        NOW,
      );
      const to = nextPhase(from, "start");
      if (to === undefined) assert.equal(errorOf(t.steps), "start_container_started");
      else {
        assert.equal(phaseIn(t.state), to);
        assert.ok(types(t.steps).includes("start_container"));
      }
    });

    it(`prepare from ${from}`, () => {
      const t = prepareContainer(stateIn(from), C, noReply, NOW);
      const to = nextPhase(from, "prepare");
      if (to === undefined) assert.equal(errorOf(t.steps), "start_container_started");
      else assert.equal(phaseIn(t.state), to);
    });

    it(`stop from ${from}`, () => {
      const t = stopRequest(stateIn(from), { type: "stop", container: C }, noReply);
      const to = nextPhase(from, "stop");
      if (to === undefined) assert.equal(errorOf(t.steps), "stop_container_not_started");
      else assert.equal(phaseIn(t.state), to);
    });

    it(`kill from ${from}`, () => {
      const t = killRequest(stateIn(from), { type: "kill", container: C, signal: 9 }, noReply);
      const to = nextPhase(from, "kill");
      if (to === undefined) assert.equal(errorOf(t.steps), "stop_container_not_started");
      else {
        assert.equal(phaseIn(t.state), to);
        assert.equal(t.state.containers.get(C)!.process!.stopRequested, true);
        assert.deepEqual(types(t.steps), ["kill_container"]);
      }
    });

    it(`checkpoint from ${from}`, () => {
      const t = checkpointRequest(stateIn(from), C, noReply);
      const to = nextPhase(from, "checkpoint");
      if (to === undefined) assert.ok(errorOf(t.steps) !== undefined);
      else assert.equal(phaseIn(t.state), to);
    });

    it(`pause (power) from ${from}`, () => {
      const t = pauseRequest(stateIn(from), C, noReply);
      // Power acts on a running instance only (lifecycle.ts canPower).
      if (from === "running") assert.deepEqual(types(t.steps), ["freeze"]);
      else assert.equal(errorOf(t.steps), "stop_container_not_started");
    });

    it(`exit from ${from}`, () => {
      const t = containerExited(stateIn(from), C, EXIT, undefined, NOW);
      assert.equal(phaseIn(t.state), from === "none" ? "none" : nextPhase(from, "exit"));
      if (from === "none") assert.deepEqual(t.steps, []);
    });

    it(`started from ${from}`, () => {
      const t = containerStarted(stateIn(from), {
        type: "container_started",
        container: C,
        pid: 7,
        startedAt: 5,
        cgroupPath: "/sys/fs/cgroup/x",
      });
      const to = nextPhase(from, "started");
      if (to === undefined) assert.deepEqual(t, { state: t.state, steps: [] });
      else assert.equal(phaseIn(t.state), to);
    });

    it(`start_failed from ${from}`, () => {
      const s = stateIn(from);
      const t = containerStartFailed(s, { type: "container_start_failed", container: C, error: "no" });
      const to = nextPhase(from, "start_failed");
      if (to === undefined) assert.equal(t.state, s);
      else assert.equal(phaseIn(t.state), to);
    });

    it(`created from ${from}`, () => {
      const s = stateIn(from);
      const t = containerPrepared(s, C, 7, NOW);
      const to = nextPhase(from, "created");
      if (to === undefined) assert.equal(t.state, s);
      else {
        assert.equal(phaseIn(t.state), to);
        assert.equal(t.state.containers.get(C)!.process!.startedAt, NOW);
      }
    });

    it(`checkpointed / checkpoint_failed from ${from}`, () => {
      const done = containerCheckpointed(stateIn(from), C, noReply, NOW);
      if (nextPhase(from, "checkpointed") === "none") {
        assert.equal(phaseIn(done.state), "none");
        assert.equal(done.state.containers.get(C)!.checkpoint?.at, NOW);
      }
      const failed = checkpointFailed(stateIn(from), C, { type: "unexpected", error: "x" }, noReply);
      const to = nextPhase(from, "checkpoint_failed");
      if (to !== undefined) assert.equal(phaseIn(failed.state), to);
    });

    it(`discarded from ${from}`, () => {
      const s = stateIn(from);
      const t = preparedDiscarded(s, {
        type: "prepared_discarded",
        results: [{ container: C }],
        umount: { type: "mount_images", kind: "umount", jobs: [], immediate: [], reply: noReply },
      });
      const to = nextPhase(from, "discarded");
      assert.equal(phaseIn(t.state), to ?? from);
    });
  }

  it("umount of a prepared container: discard_prepared first, then the umount; a refused discard answers its job", () => {
    const handle = { target: "/t", fsType: "squashfs" as const, method: "loop" as const };
    const s = withContainer(stateIn("prepared"), {
      ...stateIn("prepared").containers.get(C)!,
      mount: handle,
    });
    const t = mountRequest(s, "umount", [C], noReply);
    assert.deepEqual(types(t.steps), ["discard_prepared"]);
    const discard = t.steps[0] as Extract<Step, { type: "discard_prepared" }>;
    assert.deepEqual(discard.containers, [C]);
    assert.equal(phaseIn(t.state), "prepared");
    assert.equal(t.state.containers.get(C)!.busy, "umount");

    const gone = preparedDiscarded(t.state, {
      type: "prepared_discarded",
      results: [{ container: C }],
      umount: discard.umount,
    });
    assert.equal(phaseIn(gone.state), "none");
    assert.deepEqual(gone.steps, [discard.umount]);
    const done = mountsDone(gone.state, { ...discard.umount, type: "mounted", results: [{ container: C }] });
    assert.equal(done.state.containers.get(C)!.mount, undefined);
    assert.equal(done.state.containers.get(C)!.busy, undefined);

    const error = { type: "unexpected" as const, error: "x" };
    const kept = preparedDiscarded(t.state, {
      type: "prepared_discarded",
      results: [{ container: C, error }],
      umount: discard.umount,
    });
    assert.equal(phaseIn(kept.state), "prepared");
    const step = kept.steps[0] as Extract<Step, { type: "mount_images" }>;
    assert.deepEqual(step.jobs[0]!.refused, error);
  });

  it("adopt: running and prepared instances get their phase back", () => {
    const base = stateIn("none");
    const entry = {
      container: C,
      cgroupPath: "/sys/fs/cgroup/x",
      startedAt: 3,
      startedBy: "request" as const,
      overrides: processIn("running").overrides,
      resources: [],
    };
    assert.equal(phaseIn(adopted(base, [{ ...entry, pid: 9 }]).state), nextPhase("none", "adopt_running"));
    assert.equal(
      phaseIn(adopted(base, [{ ...entry, pid: 9, prepared: true }]).state),
      nextPhase("none", "adopt_prepared"),
    );
  });

  it("a kill during a checkpoint keeps the exit final when the checkpoint fails", () => {
    const checkpointing = checkpointRequest(stateIn("running"), C, noReply).state;
    const killed = killRequest(checkpointing, { type: "kill", container: C, signal: 9 }, noReply).state;
    const failed = checkpointFailed(killed, C, { type: "unexpected", error: "x" }, noReply).state;
    assert.equal(phaseIn(failed), "running");
    const exited = containerExited(failed, C, { type: "exit", code: 1 }, undefined, NOW);
    assert.ok(!types(exited.steps).includes("schedule_restart"));
  });
});

// ---------------------------------------------------------------------------------------------
// restart policy and backoff

describe("restart policy", () => {
  const FAIL: ExitStatus = { type: "exit", code: 1 };

  it("backoff doubles from the initial delay and is capped", () => {
    const m = {
      name: "svc",
      version: "1.0.0",
      restart: { policy: "always", backoff: { initial: "1s", max: "5s" } },
    } as unknown as Manifest;
    assert.deepEqual(
      [0, 1, 2, 3, 4].map((n) => restartDelay(m, n)),
      [1000, 2000, 4000, 5000, 5000],
    );
    const plain = { name: "svc", version: "1.0.0" } as unknown as Manifest;
    assert.equal(restartDelay(plain, 0), 100);
    assert.equal(restartDelay(plain, 100), 30_000);
  });

  it("always restarts after the backoff; restart_due starts it again, counted", () => {
    const s = stateIn("running", { restart: { policy: "always" } } as Partial<Manifest>);
    const t = containerExited(s, C, EXIT, undefined, NOW);
    const schedule = t.steps.find((x) => x.type === "schedule_restart");
    assert.deepEqual(schedule, { type: "schedule_restart", container: C, delayMs: 100 });
    assert.equal(t.state.containers.get(C)!.restarts, 1);
    const again = restartDue(t.state, C, NOW + 100);
    assert.equal(phaseIn(again.state), "starting");
    const step = again.steps.find((x) => x.type === "start_container");
    assert.equal(step?.type === "start_container" && step.startedBy, "restart");
    assert.equal(again.state.containers.get(C)!.restarts, 1);
  });

  it("on-failure restarts a failure, not a success", () => {
    const manifest = { restart: { policy: "on-failure" } } as Partial<Manifest>;
    assert.ok(
      types(containerExited(stateIn("running", manifest), C, FAIL, undefined, NOW).steps).includes(
        "schedule_restart",
      ),
    );
    assert.ok(
      !types(containerExited(stateIn("running", manifest), C, EXIT, undefined, NOW).steps).includes(
        "schedule_restart",
      ),
    );
  });

  it("gives up after max_retries", () => {
    const manifest = { restart: { policy: "always", max_retries: 2 } } as Partial<Manifest>;
    let s = stateIn("running", manifest);
    s = withContainer(s, { ...s.containers.get(C)!, restarts: 2 });
    const t = containerExited(s, C, FAIL, undefined, NOW);
    assert.ok(!types(t.steps).includes("schedule_restart"));
    assert.ok(t.steps.some((x) => x.type === "log" && x.message.includes("gives up")));
  });

  it("never restarts an exit after a kill or stop, nor while shutting down", () => {
    const manifest = { restart: { policy: "always" } } as Partial<Manifest>;
    const killed = containerExited(
      stateIn("running", manifest, { stopRequested: true }),
      C,
      FAIL,
      undefined,
      NOW,
    );
    assert.ok(!types(killed.steps).includes("schedule_restart"));
    const stopped = containerExited(stateIn("stopping", manifest), C, FAIL, undefined, NOW);
    assert.ok(!types(stopped.steps).includes("schedule_restart"));
    const down = { ...stateIn("running", manifest), shuttingDown: true };
    assert.ok(!types(containerExited(down, C, FAIL, undefined, NOW).steps).includes("schedule_restart"));
    assert.deepEqual(restartDue(down, C, NOW).steps, []);
  });

  it("restart_due for a container that runs again (or is gone) does nothing", () => {
    assert.deepEqual(restartDue(stateIn("running"), C, NOW).steps, []);
    assert.deepEqual(restartDue(initialState([]), C, NOW).steps, []);
  });
});

// ---------------------------------------------------------------------------------------------
// critical containers and reboot

describe("critical containers and reboot", () => {
  it("a critical container's failure shuts the daemon down; its success does not", () => {
    const critical = { autostart: "critical" } as Partial<Manifest>;
    const failed = containerExited(
      stateIn("running", critical),
      C,
      { type: "exit", code: 3 },
      undefined,
      NOW,
    );
    assert.ok(failed.steps.some((s) => s.type === "shutdown" && s.reason.kind === "critical_container"));
    const ok = containerExited(stateIn("running", critical), C, EXIT, undefined, NOW);
    assert.ok(!types(ok.steps).includes("shutdown"));
  });

  it("a critical autostart that fails to start shuts the daemon down; a requested one does not", () => {
    const critical = { autostart: "critical" } as Partial<Manifest>;
    const r = { type: "container_start_failed" as const, container: C, error: "boom" };
    const auto = containerStartFailed(stateIn("starting", critical, { startedBy: "autostart" }), r);
    assert.ok(types(auto.steps).includes("shutdown"));
    const requested = containerStartFailed(stateIn("starting", critical), r);
    assert.ok(!types(requested.steps).includes("shutdown"));
  });

  it("an exit with reason reboot starts the container again with the same overrides", () => {
    const overrides = { init: "/bin/x", arguments: ["a"], environment: { K: "v" } };
    const t = containerExited(
      stateIn("running", {}, { overrides }),
      C,
      { type: "exit", code: 0, reason: "reboot" },
      undefined,
      NOW,
    );
    assert.equal(phaseIn(t.state), "starting");
    const start = t.steps.find((s) => s.type === "start_container");
    assert.ok(start?.type === "start_container");
    assert.equal(start.startedBy, "reboot");
    assert.deepEqual(start.overrides, overrides);
    const started = containerStarted(t.state, {
      type: "container_started",
      container: C,
      pid: 1,
      startedAt: 2,
      cgroupPath: "/sys/fs/cgroup/x",
    });
    assert.ok(started.steps.some((s) => s.type === "notify" && s.notification.type === "restarted"));
  });

  it("a reboot after a kill is not a reboot", () => {
    const t = containerExited(
      stateIn("running", {}, { stopRequested: true }),
      C,
      { type: "exit", code: 0, reason: "reboot" },
      undefined,
      NOW,
    );
    assert.equal(phaseIn(t.state), "none");
  });

  it("prepare: true prepares the next instance once one ended", () => {
    const t = containerExited(
      stateIn("running", { prepare: true } as Partial<Manifest>),
      C,
      EXIT,
      undefined,
      NOW,
    );
    assert.equal(phaseIn(t.state), "preparing");
  });
});

// ---------------------------------------------------------------------------------------------
// stop joining

describe("stop", () => {
  it("a second stop joins the first: one stop step, every caller answered by the exit", () => {
    const got: Response[] = [];
    const first = stopRequest(stateIn("running"), { type: "stop", container: C }, (r) => got.push(r));
    assert.deepEqual(types(first.steps), ["stop_container"]);
    const second = stopRequest(first.state, { type: "stop", container: C, timeout: 1 }, (r) => got.push(r));
    assert.deepEqual(second.steps, []);
    const exited = containerExited(second.state, C, EXIT, undefined, NOW);
    const stopAnswers = answers(exited.steps).filter((r) => r.type === "stop");
    assert.equal(stopAnswers.length, 2);
  });

  it("grace: the request's timeout, else the manifest's, else 5 s; a prepared instance goes at once", () => {
    const grace = (s: RuntimeState, timeout?: number): number | undefined => {
      const step = stopRequest(
        s,
        { type: "stop", container: C, ...(timeout === undefined ? {} : { timeout }) },
        noReply,
      ).steps[0];
      return step?.type === "stop_container" ? step.graceMs : undefined;
    };
    assert.equal(grace(stateIn("running"), 2), 2000);
    assert.equal(grace(stateIn("running", { stop_timeout: "3s" } as Partial<Manifest>)), 3000);
    assert.equal(grace(stateIn("running")), 5000);
    assert.equal(grace(stateIn("prepared"), 9), 0);
  });

  it("a stop during the start: the start's report keeps it stopping, the exit answers both", () => {
    const got: Response[] = [];
    let s = startRequest(
      stateIn("none"),
      { type: "start", container: C, arguments: [], environment: {}, init: null },
      (r) => got.push(r),
      NOW,
    ).state;
    s = stopRequest(s, { type: "stop", container: C }, (r) => got.push(r)).state;
    const started = containerStarted(s, {
      type: "container_started",
      container: C,
      pid: 3,
      startedAt: NOW,
      cgroupPath: "/sys/fs/cgroup/x",
    });
    assert.equal(phaseIn(started.state), "stopping");
    assert.ok(answers(started.steps).some((r) => r.type === "start"));
  });
});

// ---------------------------------------------------------------------------------------------
// prepared instances

describe("prepared supersede", () => {
  const start = (s: RuntimeState, environment: Record<string, string> = {}, reply = noReply) =>
    startRequest(s, { type: "start", container: C, arguments: [], environment, init: null }, reply, NOW);

  it("a start of a preparing instance takes it over and answers the prepare at once", () => {
    const prepareAnswers: Response[] = [];
    const preparing = prepareContainer(stateIn("none"), C, (r) => prepareAnswers.push(r), NOW);
    assert.equal(phaseIn(preparing.state), "preparing");
    const t = start(preparing.state);
    const prepareReply = t.steps.find((s) => s.type === "reply_to");
    assert.ok(prepareReply?.type === "reply_to");
    assert.deepEqual(prepareReply.response, { type: "prepare", result: { type: "ok", container: C } });
    const step = t.steps.find((s) => s.type === "start_container");
    assert.ok(step?.type === "start_container" && step.prepared === "use");
  });

  it("a start of a prepared instance uses it; with overrides it replaces it", () => {
    const use = start(stateIn("prepared")).steps.find((s) => s.type === "start_container");
    assert.ok(use?.type === "start_container" && use.prepared === "use");
    const replace = start(stateIn("prepared"), { K: "v" }).steps.find((s) => s.type === "start_container");
    assert.ok(replace?.type === "start_container" && replace.prepared === "replace");
    const fresh = start(stateIn("none")).steps.find((s) => s.type === "start_container");
    assert.ok(fresh?.type === "start_container" && fresh.prepared === undefined);
  });

  it("a prepared instance that ends without a start has no exit notification", () => {
    const t = containerExited(stateIn("prepared"), C, { type: "signalled", signal: 9 }, undefined, NOW);
    assert.ok(!t.steps.some((s) => s.type === "notify"));
    assert.ok(types(t.steps).includes("cleanup_container"));
  });
});

// ---------------------------------------------------------------------------------------------
// start checks

describe("start checks", () => {
  const start = (s: RuntimeState, container = C, environment: Record<string, string> = {}) =>
    startRequest(s, { type: "start", container, arguments: [], environment, init: null }, noReply, NOW);

  it("unknown, and reserved by an install: invalid_container", () => {
    assert.equal(errorOf(start(initialState([]))), "invalid_container");
    const s = stateIn("none");
    const reserved = withContainer(s, { ...s.containers.get(C)!, busy: "install" });
    assert.equal(errorOf(start(reserved)), "invalid_container");
  });

  it("a resource container (no init) cannot start", () => {
    const s = withContainer(initialState([]), {
      id: C,
      pkg: pkgOf({ name: "svc", version: "1.0.0", init: undefined }),
    });
    assert.equal(errorOf(start(s)), "start_container_resource");
  });

  it("one instance per name: another version running refuses the start", () => {
    const other = "svc:2.0.0";
    let s = stateIn("none");
    s = withContainer(s, {
      id: other,
      pkg: pkgOf({ name: "svc", version: "2.0.0" }),
      process: processIn("running"),
    });
    assert.equal(errorOf(start(s)), "start_container_started");
  });

  it("busy, shutting down: start_container_failed", () => {
    const s = stateIn("none");
    assert.equal(
      errorOf(start(withContainer(s, { ...s.containers.get(C)!, busy: "mount" }))),
      "start_container_failed",
    );
    assert.equal(errorOf(start({ ...s, shuttingDown: true })), "start_container_failed");
  });

  it("reserved environment variables: invalid_arguments", () => {
    assert.equal(errorOf(start(stateIn("none"), C, { NORTHSTAR_NAME: "x" })), "invalid_arguments");
  });

  it("a missing resource: start_container_missing_resource", () => {
    const s = stateIn("none", {
      mounts: { "/res": { type: "resource", name: "lib", version: ">=1", dir: "/" } },
    } as unknown as Partial<Manifest>);
    assert.equal(errorOf(start(s)), "start_container_missing_resource");
  });

  it("the daemon-wide limit: limit_reached", () => {
    let s = stateIn("none");
    s = { ...s, limits: { maxContainers: 1, groups: [] } };
    s = withContainer(s, {
      id: "b:1.0.0",
      pkg: pkgOf({ name: "b", version: "1.0.0" }),
      process: processIn("running"),
    });
    assert.equal(errorOf(start(s)), "limit_reached");
  });

  it("an accepted start records its time and origin", () => {
    const t = start(stateIn("none"));
    const process = t.state.containers.get(C)!.process!;
    assert.equal(process.phase, "starting");
    assert.equal(process.power.lastActivity, NOW);
    assert.equal(process.startedBy, "request");
  });
});
