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
 * Race rules for kill, stop, pause, suspend and resume (gate's executor): requests reach the
 * state owner one at a time, so "concurrent" calls are applied in arrival order, each exactly
 * once, and each gets one answer.
 * - kill: signals at once, whatever else is pending (a frozen container is thawed beside the
 *   signal), so a kill always wins over a pending suspend: the container's exit ends every
 *   pending suspend with `suspend_failure`. A kill of a container that already ended is
 *   `stop_container_not_started`.
 * - stop: joins an earlier stop (one SIGTERM, one escalation, every caller gets the end).
 * - pause/suspend/resume: at most one freezer operation per container; suspends queue and are
 *   served in order; a pause of a paused container is a no-op success; anything that would need
 *   a second freezer operation at once is refused with a definite error (state/power.ts).
 */
import semver from "semver";
import type { ContainerId } from "../../protocol/container.js";
import type { ExitStatus, MemoryNotification, Request, WireError } from "../../protocol/messages.js";
import { RESERVED_ENV_VARIABLES, satisfiesRequirement, type Manifest } from "../../npk/manifest/index.js";
import { parseDuration } from "../../common/units.js";
import { checkLimits, groupOfManifest, type LimitReached } from "../cgroups/groups.js";
import { isFrozen, powerEndedByExit } from "./power.js";
import { manifestPowerSteps } from "./wake.js";
import type { JobResult, Reply } from "../events/types.js";
import {
  initialPower,
  NO_OVERRIDES,
  withContainer,
  type ContainerRecord,
  type RuntimeState,
  type StartedBy,
  type StartOverrides,
} from "./model.js";
import { isPrepared, prepareContainer, preparedEnded } from "./prepare.js";
import type { Step, Transition } from "./steps.js";

type T = Transition<RuntimeState>;

/** Grace period of `stop` when neither the request nor the manifest gives one. */
export const DEFAULT_STOP_TIMEOUT_MS = 5000;
/** Restart policy backoff defaults. */
export const DEFAULT_BACKOFF = { initialMs: 100, maxMs: 30_000 };

const nameOf = (id: ContainerId): string => id.slice(0, id.lastIndexOf(":"));

/** Answers a refused start (or prepare) with `error`; a refusal without a requester is silent. */
function startErrorOf(
  state: RuntimeState,
  container: ContainerId,
  error: WireError,
  reply: Reply | undefined,
  kind: "start" | "prepare" | "restore" = "start",
): T {
  const response = { type: kind, result: { type: "error" as const, container, error } };
  return { state, steps: reply ? [{ type: "reply_to", reply, response }] : [] };
}

/** The highest installed version of `name` that satisfies `requirement` (Northstar picks the lowest). */
export function resolveResource(
  state: RuntimeState,
  name: string,
  requirement: string,
): ContainerRecord | undefined {
  let best: ContainerRecord | undefined;
  for (const c of state.containers.values()) {
    const m = c.pkg.npk.manifest;
    if (c.busy === "install" || m.name !== name || m.init !== undefined) continue;
    if (!satisfiesRequirement(m.version, requirement)) continue;
    if (!best || semver.gt(m.version, best.pkg.npk.manifest.version)) best = c;
  }
  return best;
}

export function startContainer(
  state: RuntimeState,
  container: ContainerId,
  overrides: StartOverrides,
  startedBy: StartedBy,
  reply?: Reply,
  now: number = Date.now(),
  prepareOnly = false,
  /** `restore`: from the checkpoint image (state/checkpoint.ts); a prepared instance is discarded. */
  restore = false,
): T {
  const startError = (state: RuntimeState, container: ContainerId, error: WireError, reply?: Reply): T =>
    startErrorOf(state, container, error, reply, prepareOnly ? "prepare" : restore ? "restore" : "start");
  const record = state.containers.get(container);
  if (!record || record.busy === "install")
    return startError(state, container, { type: "invalid_container", container }, reply);
  const manifest = record.pkg.npk.manifest;
  if (manifest.init === undefined)
    return startError(state, container, { type: "start_container_resource", container }, reply);
  // A prepared (or preparing) instance of this very container is what a start uses.
  const prepared = record.process && isPrepared(record.process) ? record.process : undefined;
  const running = [...state.containers.values()].some(
    (c) => c.process && nameOf(c.id) === manifest.name && !(c.id === container && prepared && !prepareOnly),
  );
  if (running) return startError(state, container, { type: "start_container_started", container }, reply);
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
      phase: prepareOnly ? "preparing" : "starting",
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
            response: { type: "prepare", result: { type: "ok", container } },
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
        cold: prepared !== undefined && (cold || restore),
        ...(restore ? { restore: true } : {}),
      },
    ],
  };
}

/** gate's limits: a string is a configuration problem (an unknown group), an object the limit hit. */
function limitCheck(state: RuntimeState, manifest: Manifest): LimitReached | string | undefined {
  let group: string | undefined;
  try {
    group = groupOfManifest(manifest, state.limits.groups)?.name;
  } catch (e) {
    return (e as Error).message;
  }
  let running = 0;
  const runningInGroup = new Map<string, number>();
  for (const c of state.containers.values()) {
    if (!c.process) continue;
    running++;
    const g = groupOfManifest(c.pkg.npk.manifest, state.limits.groups)?.name;
    if (g !== undefined) runningInGroup.set(g, (runningInGroup.get(g) ?? 0) + 1);
  }
  return checkLimits({ running, runningInGroup }, group, state.limits);
}

export function startRequest(
  state: RuntimeState,
  request: Extract<Request, { type: "start" }>,
  reply: Reply,
): T {
  const { init, arguments: args, environment } = request;
  return startContainer(state, request.container, { init, arguments: args, environment }, "request", reply);
}

/** Records the images a start mounted, whatever becomes of the start. */
export function imagesMounted(
  state: RuntimeState,
  mounted: Extract<JobResult, { type: "images_mounted" }>["mounted"],
): T {
  let next = state;
  for (const { container, handle } of mounted) {
    const r = next.containers.get(container);
    if (r) next = withContainer(next, { ...r, mount: handle });
  }
  return { state: next, steps: [] };
}

export function containerStarted(
  state: RuntimeState,
  r: Extract<JobResult, { type: "container_started" }>,
): T {
  const record = state.containers.get(r.container);
  if (!record?.process) return { state, steps: [] };
  const process = {
    ...record.process,
    phase: record.process.phase === "stopping" ? "stopping" : "running",
    pid: r.pid,
    startedAt: r.startedAt,
  } as const;
  const steps: Step[] = [];
  if (process.startReply) {
    steps.push({
      type: "reply_to",
      reply: process.startReply,
      response: {
        type: process.restoring ? "restore" : "start",
        result: { type: "ok", container: r.container },
      },
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
  if (!record?.process) return { state, steps: [] };
  const steps: Step[] = [
    { type: "log", level: "error", container: r.container, message: `start failed: ${r.error}` },
    { type: "cleanup_container", container: r.container },
  ];
  const reply = record.process.startReply;
  if (reply) {
    steps.push({
      type: "reply_to",
      reply,
      response: {
        type:
          record.process.phase === "preparing" ? "prepare" : record.process.restoring ? "restore" : "start",
        result: {
          type: "error",
          container: r.container,
          error: r.problems
            ? { type: "executor_degraded", problems: r.problems }
            : { type: "start_container_failed", container: r.container, error: r.error },
        },
      },
    });
  }
  for (const stopReply of record.process.stopReplies) {
    steps.push({
      type: "reply_to",
      reply: stopReply,
      response: {
        type: "stop",
        result: {
          type: "error",
          container: r.container,
          error: { type: "stop_container_not_started", container: r.container },
        },
      },
    });
  }
  const manifest = record.pkg.npk.manifest;
  if (manifest.autostart === "critical" && record.process.startedBy === "autostart") {
    steps.push({ type: "shutdown", reason: `critical container ${r.container} failed to start: ${r.error}` });
  }
  return { state: withContainer(state, { ...record, process: undefined }), steps };
}

function isSuccess(status: ExitStatus): boolean {
  return status.type === "exit" && status.code === 0;
}

export function describeStatus(status: ExitStatus): string {
  const how = status.type === "exit" ? `exit code ${status.code}` : `signal ${status.signal}`;
  return `${how}${status.reason ? `, reason ${status.reason}` : ""}${status.oom ? ", oom" : ""}`;
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
  instance?: string,
): T {
  const record = state.containers.get(container);
  if (!record?.process) return { state, steps: [] };
  if (isPrepared(record.process)) return preparedEnded(state, record, status);
  const process = record.process;
  const manifest = record.pkg.npk.manifest;
  const steps: Step[] = [
    ...powerEndedByExit(record),
    { type: "cleanup_container", container },
    {
      type: "notify",
      notification: { type: "exit", container, status, ...(instance === undefined ? {} : { instance }) },
    },
    {
      type: "log",
      level: isSuccess(status) ? "info" : "warn",
      container,
      message: `exited: ${describeStatus(status)}`,
    },
  ];
  for (const reply of process.stopReplies) {
    steps.push({
      type: "reply_to",
      reply,
      response: { type: "stop", result: { type: "ok", container, status } },
    });
  }
  if (process.startReply) {
    steps.push({
      type: "reply_to",
      reply: process.startReply,
      response: {
        type: process.restoring ? "restore" : "start",
        result: {
          type: "error",
          container,
          error: {
            type: "start_container_failed",
            container,
            error: `exited during start: ${describeStatus(status)}`,
          },
        },
      },
    });
  }
  let next = withContainer(state, { ...record, process: undefined });
  if (state.shuttingDown) return { state: next, steps };
  const prepareNext = (t: T): T => {
    // `prepare: true` keeps one instance ready: the next one is prepared once this one ended.
    if (!manifest.prepare || t.state.containers.get(container)?.process) return t;
    const prepared = prepareContainer(t.state, container, undefined);
    return { state: prepared.state, steps: [...t.steps, ...prepared.steps] };
  };
  if (process.stopRequested) return prepareNext({ state: next, steps });

  if (status.reason === "reboot") {
    const restart = startContainer(next, container, process.overrides, "reboot");
    return { state: restart.state, steps: [...steps, ...restart.steps] };
  }
  if (manifest.autostart === "critical" && !isSuccess(status)) {
    steps.push({
      type: "shutdown",
      reason: `critical container ${container} exited: ${describeStatus(status)}`,
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

export function restartDue(state: RuntimeState, container: ContainerId): T {
  const record = state.containers.get(container);
  if (!record || record.process || state.shuttingDown) return { state, steps: [] };
  return startContainer(state, container, NO_OVERRIDES, "restart");
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
  if (badSignal || !record?.process) {
    const error: WireError = badSignal
      ? { type: "invalid_arguments", cause: `invalid signal ${signal}: must be 1..${MAX_SIGNAL}` }
      : record
        ? notStarted(container)
        : { type: "invalid_container", container };
    return {
      state,
      steps: [
        { type: "reply_to", reply, response: { type: "kill", result: { type: "error", container, error } } },
      ],
    };
  }
  return {
    state: withContainer(state, { ...record, process: { ...record.process, stopRequested: true } }),
    steps: [{ type: "kill_container", container, signal, thaw: isFrozen(record), reply }],
  };
}

export function stopRequest(
  state: RuntimeState,
  request: Extract<Request, { type: "stop" }>,
  reply: Reply,
): T {
  const { container } = request;
  const record = state.containers.get(container);
  if (!record?.process) {
    const error = record ? notStarted(container) : { type: "invalid_container" as const, container };
    return {
      state,
      steps: [
        { type: "reply_to", reply, response: { type: "stop", result: { type: "error", container, error } } },
      ],
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
      phase: "stopping",
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
