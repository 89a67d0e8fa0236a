/**
 * Container lifecycle transitions: start, kill, stop, the instance's start and exit, restarts
 * (reboot from inside, restart policy), critical containers. Pure: (state, input) -> (state, steps).
 *
 * INVARIANTS:
 * - One instance per container name at a time (Northstar's rule): a start while any version of
 *   that name has a process record is `start_container_started`.
 * - A process record exists from the accepted start until the exit event; the exit event is
 *   the only thing that removes it, so an exit is reported exactly once per instance.
 * - An exit after a `kill` or `stop` request is never restarted by the restart policy.
 *
 * Which moves are allowed in which phase, and the one rule for a kill, are in lifecycle.ts.
 *
 * Race rules for kill, stop, pause, suspend and resume (docs/executor.md): requests reach the
 * state owner one at a time, so "concurrent" calls are applied in arrival order, each exactly
 * once, and each gets one answer.
 * - kill: accepted at once, whatever else is pending (a frozen container is thawed beside the
 *   signal), so a kill always wins over a pending suspend: the container's exit ends every
 *   pending suspend with `suspend_failure`. A kill of a container that already ended is
 *   `stop_container_not_started`.
 * - stop: joins an earlier stop (one SIGTERM, one escalation, every caller gets the end).
 * - pause/suspend/resume: at most one freezer operation per container; suspends queue and are
 *   served in order; a pause of a paused container is a no-op success; anything that would need
 *   a second freezer operation at once is refused with a definite error (state/power.ts).
 */
import type { ContainerId } from "../../protocol/container.js";
import type { ExitStatus, MemoryNotification, Request, WireError } from "../../protocol/messages.js";
import type { Manifest } from "../../npk/manifest/types.js";
import { RESERVED_ENV_VARIABLES } from "../../npk/manifest/validate.js";
import { satisfiesRequirement } from "../../npk/manifest/version-req.js";
import { semverLib } from "../../npk/manifest/semver.js";
import { parseDuration } from "../../common/units.js";
import { checkLimits, groupOfManifest, type LimitReached } from "../cgroups/groups.js";
import { isFrozen, powerEndedByExit } from "./power.js";
import { manifestPowerSteps } from "./wake.js";
import type { JobResult, Reply } from "../events/types.js";
import { NO_OVERRIDES, type StartedBy, type StartOverrides } from "../events/data.js";
import {
  initialPower,
  otherInstancesOfName,
  withContainer,
  type ContainerRecord,
  type RuntimeState,
} from "./model.js";
import {
  allows,
  canKill,
  canStart,
  canStop,
  exitIsFinal,
  isPrepared,
  livePhase,
  nextPhase,
  phaseOf,
} from "./lifecycle.js";
import { preparedEnded } from "./prepare.js";
import { describeStatus, isSuccess } from "./status.js";
import type { Step, Transition } from "../events/steps.js";
import { containerError, containerResponse, stopResponse } from "../responses.js";
import { messageOf } from "../../common/errors.js";

type T = Transition<RuntimeState>;

/** Grace period of `stop` when neither the request nor the manifest gives one. */
const DEFAULT_STOP_TIMEOUT_MS = 5000;
/** Restart policy backoff defaults. */
const DEFAULT_BACKOFF = { initialMs: 100, maxMs: 30_000 };

/** Answers a refused start (or prepare) with `error`; a refusal without a requester is silent. */
function startErrorOf(
  state: RuntimeState,
  container: ContainerId,
  error: WireError,
  reply: Reply | undefined,
  kind: "start" | "prepare" | "restore" = "start",
): T {
  const response = containerResponse(kind, container, error);
  return { state, steps: reply ? [{ type: "reply_to", reply, response }] : [] };
}

/** The highest installed version of `name` that satisfies `requirement` (Northstar picks the lowest). */
function resolveResource(
  state: RuntimeState,
  name: string,
  requirement: string,
): ContainerRecord | undefined {
  let best: ContainerRecord | undefined;
  for (const c of state.containers.values()) {
    const m = c.pkg.npk.manifest;
    if (c.busy === "install" || m.name !== name || m.init !== undefined) continue;
    if (!satisfiesRequirement(m.version, requirement)) continue;
    if (!best || semverLib().gt(m.version, best.pkg.npk.manifest.version)) best = c;
  }
  return best;
}

/** What starts an instance, and how. */
export interface StartInput {
  overrides: StartOverrides;
  startedBy: StartedBy;
  /** The requester waiting for the answer (absent for restarts, reboots and autostart). */
  reply?: Reply;
  /** Epoch ms, from the event being handled. */
  now: number;
  /** `prepare`: create only, the instance waits on the exec fifo. */
  prepareOnly?: boolean;
  /** `restore`: from the checkpoint image (state/checkpoint.ts); a prepared instance is discarded. */
  restore?: boolean;
}

export function startContainer(state: RuntimeState, container: ContainerId, input: StartInput): T {
  const { overrides, startedBy, reply, now, prepareOnly = false, restore = false } = input;
  const startError = (state: RuntimeState, container: ContainerId, error: WireError, reply?: Reply): T =>
    startErrorOf(state, container, error, reply, prepareOnly ? "prepare" : restore ? "restore" : "start");
  const record = state.containers.get(container);
  if (!record || record.busy === "install")
    return startError(state, container, { type: "invalid_container", container }, reply);
  const manifest = record.pkg.npk.manifest;
  if (manifest.init === undefined)
    return startError(state, container, { type: "start_container_resource", container }, reply);
  // A prepared (or preparing) instance of this very container is what a start uses.
  const prepared = isPrepared(record.process) ? record.process : undefined;
  if (otherInstancesOfName(state, record) > 0 || !canStart(record.process, prepareOnly))
    return startError(state, container, { type: "start_container_started", container }, reply);
  const failed = (error: string): T =>
    startError(state, container, { type: "start_container_failed", container, error }, reply);
  if (state.shuttingDown) return failed("the daemon is shutting down");
  if (record.busy) return failed(`the container is busy (${record.busy})`);
  const reserved = Object.keys(overrides.environment).filter((k) => RESERVED_ENV_VARIABLES.includes(k));
  if (reserved.length > 0) {
    return startError(
      state,
      container,
      { type: "invalid_arguments", cause: `reserved environment variables: ${reserved.join(", ")}` },
      reply,
    );
  }
  const reached = prepared ? undefined : limitCheck(state, manifest);
  if (typeof reached === "string") return failed(reached);
  if (reached) return startError(state, container, { type: "limit_reached", container, ...reached }, reply);
  const resources: Extract<Step, { type: "start_container" }>["resources"] = [];
  for (const mount of Object.values(manifest.mounts ?? {})) {
    if (mount.type !== "resource") continue;
    const resource = resolveResource(state, mount.name, mount.version);
    if (!resource) {
      return startError(
        state,
        container,
        { type: "start_container_missing_resource", container, resource: mount.name, version: mount.version },
        reply,
      );
    }
    if (resource.busy) return failed(`resource ${resource.id} is busy (${resource.busy})`);
    resources.push({ container: resource.id, pkg: resource.pkg, mount: resource.mount });
  }
  const cold =
    overrides.init !== null ||
    overrides.arguments.length > 0 ||
    Object.keys(overrides.environment).length > 0;
  const next = withContainer(state, {
    ...record,
    restarts: startedBy === "restart" ? record.restarts : 0,
    process: {
      phase: livePhase(phaseOf(record.process), prepareOnly ? "prepare" : "start"),
      startedBy,
      overrides,
      resources: resources.map((r) => r.container),
      startReply: reply,
      stopReplies: [],
      stopRequested: false,
      power: initialPower(now),
      ...(restore ? { restoring: true } : {}),
    },
  });
  // A prepare still in flight is taken over by this start; its requester gets its answer now.
  const supersededPrepare: Step[] =
    !prepareOnly && prepared?.phase === "preparing" && prepared.startReply
      ? [
          {
            type: "reply_to",
            reply: prepared.startReply,
            response: containerResponse("prepare", container),
          },
        ]
      : [];
  return {
    state: next,
    steps: [
      ...supersededPrepare,
      {
        type: "start_container",
        container,
        pkg: record.pkg,
        mount: record.mount,
        resources,
        overrides,
        startedBy,
        prepareOnly,
        // A restore never uses the prepared process: its process comes from the image.
        ...(prepared ? { prepared: cold || restore ? ("replace" as const) : ("use" as const) } : {}),
        ...(restore ? { restore: true } : {}),
      },
    ],
  };
}

/** The container limits: a string is a configuration problem (an unknown group), an object the limit hit. */
function limitCheck(state: RuntimeState, manifest: Manifest): LimitReached | string | undefined {
  let group: string | undefined;
  try {
    group = groupOfManifest(manifest, state.limits.groups)?.name;
  } catch (e) {
    return messageOf(e);
  }
  const { total: running, byGroup: runningInGroup } = state.instances;
  return checkLimits({ running, runningInGroup }, group, state.limits);
}

/** gate's prepared process: mount, bundle, monitor and `runtime create`, so a start costs a fifo read. */
export function prepareContainer(
  state: RuntimeState,
  container: ContainerId,
  reply: Reply | undefined,
  now: number,
): T {
  return startContainer(state, container, {
    overrides: NO_OVERRIDES,
    startedBy: "request",
    reply,
    now,
    prepareOnly: true,
  });
}

export function startRequest(
  state: RuntimeState,
  request: Extract<Request, { type: "start" }>,
  reply: Reply,
  now: number,
): T {
  const { init, arguments: args, environment } = request;
  const overrides = { init, arguments: args, environment };
  return startContainer(state, request.container, { overrides, startedBy: "request", reply, now });
}

/** Records the images a start mounted, whatever becomes of the start (the mount cache's). */
export function imagesMounted(
  state: RuntimeState,
  mounted: Extract<JobResult, { type: "images_mounted" }>["mounted"],
): T {
  let next = state;
  for (const { container, handle } of mounted) {
    const r = next.containers.get(container);
    // The mount cache may release it once no instance uses it (state/mount-cache.ts).
    if (r) next = withContainer(next, { ...r, mount: handle, mountedBy: "start" });
  }
  return { state: next, steps: [] };
}

export function containerStarted(
  state: RuntimeState,
  r: Extract<JobResult, { type: "container_started" }>,
): T {
  const record = state.containers.get(r.container);
  if (!record?.process) return { state, steps: [] };
  const phase = nextPhase(record.process.phase, "started");
  if (phase === undefined || phase === "none") return { state, steps: [] };
  const process = { ...record.process, phase, pid: r.pid, startedAt: r.startedAt };
  const steps: Step[] = [];
  if (process.startReply) {
    steps.push({
      type: "reply_to",
      reply: process.startReply,
      response: containerResponse(process.restoring ? "restore" : "start", r.container),
    });
  }
  // A restore uses its checkpoint up (state/checkpoint.ts).
  if (process.restoring) steps.push({ type: "discard_checkpoint", container: r.container });
  steps.push({
    type: "notify",
    notification: { type: process.startedBy === "reboot" ? "restarted" : "started", container: r.container },
  });
  steps.push({
    type: "log",
    level: "info",
    container: r.container,
    message: `started (pid ${r.pid}, by ${process.startedBy})`,
  });
  steps.push({ type: "attach_power", container: r.container, cgroupPath: r.cgroupPath, pid: r.pid });
  // Manifest `power`: proxy channels to open and the idle suspend timer.
  steps.push(...manifestPowerSteps(record));
  return {
    state: withContainer(state, {
      ...record,
      process: { ...process, startReply: undefined },
      ...(process.restoring ? { checkpoint: undefined } : {}),
    }),
    steps,
  };
}

export function containerStartFailed(
  state: RuntimeState,
  r: Extract<JobResult, { type: "container_start_failed" }>,
): T {
  const record = state.containers.get(r.container);
  if (!record?.process || !allows(record.process.phase, "start_failed")) return { state, steps: [] };
  const steps: Step[] = [
    { type: "log", level: "error", container: r.container, message: `start failed: ${r.error}` },
    { type: "cleanup_container", container: r.container },
  ];
  const reply = record.process.startReply;
  if (reply) {
    steps.push({
      type: "reply_to",
      reply,
      response: containerResponse(
        record.process.phase === "preparing" ? "prepare" : record.process.restoring ? "restore" : "start",
        r.container,
        r.problems
          ? { type: "executor_degraded", problems: r.problems }
          : { type: "start_container_failed", container: r.container, error: r.error },
      ),
    });
  }
  for (const stopReply of record.process.stopReplies) {
    steps.push({
      type: "reply_to",
      reply: stopReply,
      response: containerError("stop", r.container, {
        type: "stop_container_not_started",
        container: r.container,
      }),
    });
  }
  const manifest = record.pkg.npk.manifest;
  if (manifest.autostart === "critical" && record.process.startedBy === "autostart") {
    steps.push({
      type: "shutdown",
      reason: { kind: "critical_container", container: r.container, failure: `failed to start: ${r.error}` },
    });
  }
  return { state: withContainer(state, { ...record, process: undefined }), steps };
}

/** The restart policy's delay for the n-th consecutive restart (0-based), capped. */
export function restartDelay(manifest: Manifest, attempt: number): number {
  const backoff = manifest.restart?.backoff;
  const initial = backoff ? parseDuration(backoff.initial) : DEFAULT_BACKOFF.initialMs;
  const max = backoff ? parseDuration(backoff.max) : DEFAULT_BACKOFF.maxMs;
  return Math.min(max, initial * 2 ** Math.min(attempt, 30));
}

export function containerExited(
  state: RuntimeState,
  container: ContainerId,
  status: ExitStatus,
  instance: string | undefined,
  now: number,
  runtimeError?: string,
): T {
  const record = state.containers.get(container);
  if (!record?.process) return { state, steps: [] };
  if (isPrepared(record.process)) return preparedEnded(state, record, status);
  const process = record.process;
  const manifest = record.pkg.npk.manifest;
  const steps: Step[] = [
    ...powerEndedByExit(record, now),
    { type: "cleanup_container", container },
    {
      type: "notify",
      notification: { type: "exit", container, status, ...(instance === undefined ? {} : { instance }) },
    },
    {
      type: "log",
      level: isSuccess(status) ? "info" : "warn",
      container,
      message: `exited: ${describeStatus(status)}${runtimeError === undefined ? "" : `; the runtime: ${runtimeError}`}`,
    },
  ];
  for (const reply of process.stopReplies) {
    steps.push({
      type: "reply_to",
      reply,
      response: stopResponse(container, status),
    });
  }
  if (process.startReply) {
    steps.push({
      type: "reply_to",
      reply: process.startReply,
      response: containerResponse(process.restoring ? "restore" : "start", container, {
        type: "start_container_failed",
        container,
        error:
          runtimeError === undefined
            ? `exited during start: ${describeStatus(status)}`
            : `the runtime could not ${process.restoring ? "restore" : "create"} the container: ${runtimeError}`,
      }),
    });
  }
  let next = withContainer(state, { ...record, process: undefined });
  if (state.shuttingDown) return { state: next, steps };
  const prepareNext = (t: T): T => {
    // `prepare: true` keeps one instance ready: the next one is prepared once this one ended.
    if (!manifest.prepare || t.state.containers.get(container)?.process) return t;
    const prepared = prepareContainer(t.state, container, undefined, now);
    return { state: prepared.state, steps: [...t.steps, ...prepared.steps] };
  };
  if (exitIsFinal(process)) return prepareNext({ state: next, steps });

  if (status.reason === "reboot") {
    const restart = startContainer(next, container, {
      overrides: process.overrides,
      startedBy: "reboot",
      now,
    });
    return { state: restart.state, steps: [...steps, ...restart.steps] };
  }
  if (manifest.autostart === "critical" && !isSuccess(status)) {
    steps.push({
      type: "shutdown",
      reason: { kind: "critical_container", container, failure: `exited: ${describeStatus(status)}` },
    });
    return { state: next, steps };
  }
  const policy = manifest.restart?.policy ?? "no";
  if (policy === "always" || (policy === "on-failure" && !isSuccess(status))) {
    const attempt = record.restarts ?? 0;
    const max = manifest.restart?.max_retries;
    if (max !== undefined && attempt >= max) {
      steps.push({
        type: "log",
        level: "warn",
        container,
        message: `restart policy gives up after ${attempt} restarts`,
      });
    } else {
      const delayMs = restartDelay(manifest, attempt);
      next = withContainer(next, { ...next.containers.get(container)!, restarts: attempt + 1 });
      steps.push({ type: "schedule_restart", container, delayMs });
      steps.push({
        type: "log",
        level: "info",
        container,
        message: `restart ${attempt + 1} in ${delayMs} ms (policy ${policy})`,
      });
      return { state: next, steps };
    }
  }
  return prepareNext({ state: next, steps });
}

export function restartDue(state: RuntimeState, container: ContainerId, now: number): T {
  const record = state.containers.get(container);
  if (!record || record.process || state.shuttingDown) return { state, steps: [] };
  return startContainer(state, container, { overrides: NO_OVERRIDES, startedBy: "restart", now });
}

function notStarted(container: ContainerId): WireError {
  return { type: "stop_container_not_started", container };
}

/** Linux signal numbers are 1..SIGRTMAX (64). 0 only probes, and negative numbers are not signals. */
const MAX_SIGNAL = 64;

export function killRequest(
  state: RuntimeState,
  request: Extract<Request, { type: "kill" }>,
  reply: Reply,
): T {
  const { container, signal } = request;
  const record = state.containers.get(container);
  const badSignal = !Number.isInteger(signal) || signal < 1 || signal > MAX_SIGNAL;
  if (badSignal || !record?.process || !canKill(record.process)) {
    const error: WireError = badSignal
      ? { type: "invalid_arguments", cause: `invalid signal ${signal}: must be 1..${MAX_SIGNAL}` }
      : record
        ? notStarted(container)
        : { type: "invalid_container", container };
    return {
      state,
      steps: [{ type: "reply_to", reply, response: containerResponse("kill", container, error) }],
    };
  }
  return {
    state: withContainer(state, { ...record, process: { ...record.process, stopRequested: true } }),
    steps: [
      { type: "kill_container", container, signal, reply },
      ...(isFrozen(record) ? [{ type: "thaw_killed" as const, container }] : []),
    ],
  };
}

export function stopRequest(
  state: RuntimeState,
  request: Extract<Request, { type: "stop" }>,
  reply: Reply,
): T {
  const { container } = request;
  const record = state.containers.get(container);
  if (!record?.process || !canStop(record.process)) {
    const error = record ? notStarted(container) : { type: "invalid_container" as const, container };
    return {
      state,
      steps: [{ type: "reply_to", reply, response: containerError("stop", container, error) }],
    };
  }
  const process = record.process;
  const manifestTimeout = record.pkg.npk.manifest.stop_timeout;
  // A prepared instance runs no app that could handle SIGTERM: it goes at once.
  const preparedNow = isPrepared(record.process);
  const graceMs = preparedNow
    ? 0
    : request.timeout !== undefined
      ? request.timeout * 1000
      : manifestTimeout !== undefined
        ? parseDuration(manifestTimeout)
        : DEFAULT_STOP_TIMEOUT_MS;
  const next = withContainer(state, {
    ...record,
    process: {
      ...process,
      phase: livePhase(process.phase, "stop"),
      stopRequested: true,
      stopReplies: [...process.stopReplies, reply],
    },
  });
  // A second stop joins the first: one SIGTERM, one escalation, every caller gets the end.
  if (process.phase === "stopping") return { state: next, steps: [] };
  return { state: next, steps: [{ type: "stop_container", container, graceMs }] };
}

/** A memory event of a container's cgroup: Northstar's `c_group` notification and a log line. */
export function memoryEvent(state: RuntimeState, container: ContainerId, memory: MemoryNotification): T {
  if (!state.containers.get(container)?.process) return { state, steps: [] };
  const counts = Object.entries(memory)
    .filter(([, v]) => typeof v === "number" && v > 0)
    .map(([k, v]) => `${k} ${String(v)}`)
    .join(", ");
  return {
    state,
    steps: [
      { type: "notify", notification: { type: "c_group", container, memory } },
      { type: "log", level: "warn", container, message: `memory event: ${counts || "no counts"}` },
    ],
  };
}
