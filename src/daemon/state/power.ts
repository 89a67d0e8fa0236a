/**
 * Power management as pure transitions (starnix's SuspendContainer contract, libvirt's
 * pause/resume). This file: the freezer, pause/resume and suspend; wake.ts: wake locks, wake
 * sources, proxy channels and idle suspend. A running instance's PowerRecord is the whole truth; the power executor only
 * freezes, thaws, watches sources and forwards proxy traffic, and reports back as events.
 *
 * INVARIANTS:
 * - At most one freezer operation per container is in flight (`busy`); requests that need
 *   another one wait in `suspends` (served one at a time, in order) or are refused.
 * - A suspend never leaves the container frozen with wake locks held: locks held before the
 *   freeze refuse it, a lock taken while the freeze runs (`lockedDuringFreeze`) thaws it again.
 * - Removing a wake source takes effect at once: a fire from a source no longer registered is
 *   ignored, even if it was already queued.
 * - Every asleep notification is followed by exactly one awake notification (or the exit).
 */
import type { ContainerId } from "../../protocol/container.js";
import {
  RESUME_REASON_TIMEOUT,
  type PowerInfo,
  type Response,
  type WireError,
} from "../../protocol/messages.js";
import type { Reply } from "../events/types.js";
import type { ContainerRecord, PowerRecord, RuntimeState } from "./model.js";
import type { Step } from "../events/steps.js";
import { answer, notify, notRunning, running, simple, withPower, type T } from "./power-common.js";
import { containerError, suspendResponse } from "../responses.js";

/** Resume reason of a suspend that returned at once because no wake source is registered. */
export const RESUME_REASON_NO_SOURCES = "no_wake_sources";

// ---------------------------------------------------------------------------------------------
// pause / resume

export function pauseRequest(state: RuntimeState, container: ContainerId, reply: Reply): T {
  const record = running(state, container);
  if (!record) return { state, steps: answer(reply, simple("pause", container, notRunning(container))) };
  const power = record.process!.power;
  if (power.state === "paused" && !power.busy)
    return { state, steps: answer(reply, simple("pause", container)) };
  if (power.busy === "pause-freeze") {
    return { state: withPower(state, record, { ...power, waiting: [...power.waiting, reply] }), steps: [] };
  }
  if (power.busy || power.state !== "awake") {
    const error: WireError = {
      type: "invalid_arguments",
      cause: `${container} is ${power.busy ?? power.state}`,
    };
    return { state, steps: answer(reply, simple("pause", container, error)) };
  }
  return {
    state: withPower(state, record, { ...power, busy: "pause-freeze", waiting: [reply] }),
    steps: [{ type: "freeze", container, purpose: "pause" }],
  };
}

export function resumeRequest(state: RuntimeState, container: ContainerId, reply: Reply): T {
  const record = running(state, container);
  if (!record) return { state, steps: answer(reply, simple("resume", container, notRunning(container))) };
  const power = record.process!.power;
  if (power.state !== "paused" || power.busy) {
    const error: WireError = { type: "invalid_arguments", cause: `${container} is not paused` };
    return { state, steps: answer(reply, simple("resume", container, error)) };
  }
  return {
    state: withPower(state, record, { ...power, busy: "resume-thaw", waiting: [reply] }),
    steps: [{ type: "thaw", container, purpose: "resume" }],
  };
}

// ---------------------------------------------------------------------------------------------
// suspend

export function suspendRequest(
  state: RuntimeState,
  container: ContainerId,
  maxSleepMs: number | undefined,
  reply: Reply | undefined,
  now: number,
): T {
  const record = running(state, container);
  if (!record) {
    return { state, steps: answer(reply, suspendError(container, notRunning(container))) };
  }
  const power = record.process!.power;
  const next = withPower(state, record, { ...power, suspends: [...power.suspends, { reply, maxSleepMs }] });
  // Served one at a time: a new one starts only when none is in progress.
  if (power.suspends.length > 0) return { state: next, steps: [] };
  return beginSuspend(next, container, now);
}

const suspendError = (container: ContainerId, error: WireError): Response =>
  containerError("suspend", container, error);

/** Ends the suspend being served with `response`, then begins the next one. */
function finishSuspend(
  state: RuntimeState,
  container: ContainerId,
  response: Response,
  now: number,
  extra: Step[] = [],
): T {
  const record = state.containers.get(container)!;
  const power = record.process!.power;
  const [current, ...rest] = power.suspends;
  const next = withPower(state, record, { ...power, suspends: rest });
  const steps = [...extra, ...answer(current?.reply, response)];
  if (rest.length === 0) return { state: next, steps };
  const follow = beginSuspend(next, container, now);
  return { state: follow.state, steps: [...steps, ...follow.steps] };
}

function pendingProxy(power: PowerRecord): string | undefined {
  return power.sources.find((s) => s.source.type === "proxy" && (power.counters[s.source.channel] ?? 0) > 0)
    ?.name;
}

function beginSuspend(state: RuntimeState, container: ContainerId, now: number): T {
  const record = state.containers.get(container)!;
  const power = record.process!.power;
  const current = power.suspends[0]!;
  if (power.busy || power.state !== "awake") {
    const cause = `${container} is ${power.busy ?? power.state}`;
    return finishSuspend(
      state,
      container,
      suspendError(container, { type: "invalid_arguments", cause }),
      now,
    );
  }
  if (power.locks.length > 0) {
    return finishSuspend(
      state,
      container,
      suspendError(container, { type: "wake_locks_exist", container }),
      now,
    );
  }
  const proxy = pendingProxy(power);
  if (proxy !== undefined) {
    // Traffic is already waiting: asleep and awake at once, the channel is the reason.
    const asleep = notify(container, "asleep", power.sequence + 1, now);
    const awake = notify(container, "awake", power.sequence + 2, now);
    const next = withPower(state, record, {
      ...power,
      sequence: power.sequence + 2,
      lastSuspend: { suspend_time: 0, resume_reason: proxy },
    });
    return finishSuspend(next, container, suspendResponse(container, 0, proxy), now, [asleep, awake]);
  }
  if (power.sources.length === 0 && current.maxSleepMs === undefined) {
    return finishSuspend(state, container, suspendResponse(container, 0, RESUME_REASON_NO_SOURCES), now);
  }
  return {
    state: withPower(state, record, { ...power, busy: "suspend-freeze", lockedDuringFreeze: false }),
    steps: [{ type: "freeze", container, purpose: "suspend" }],
  };
}

export function freezeDone(
  state: RuntimeState,
  container: ContainerId,
  error: string | undefined,
  now: number,
): T {
  const record = state.containers.get(container);
  const power = record?.process?.power;
  if (!record || !power?.busy) return { state, steps: [] };
  if (power.busy === "pause-freeze") {
    const next = withPower(state, record, {
      ...power,
      busy: undefined,
      state: error ? "awake" : "paused",
      waiting: [],
    });
    const response = simple(
      "pause",
      container,
      error ? { type: "suspend_failure", container, error } : undefined,
    );
    return { state: next, steps: power.waiting.flatMap((r) => answer(r, response)) };
  }
  if (error !== undefined) {
    const next = withPower(state, record, { ...power, busy: undefined });
    return finishSuspend(
      next,
      container,
      suspendError(container, { type: "suspend_failure", container, error }),
      now,
    );
  }
  if (power.locks.length > 0 || power.lockedDuringFreeze) {
    const next = withPower(state, record, { ...power, busy: "wake-thaw", lockedDuringFreeze: true });
    return { state: next, steps: [{ type: "thaw", container, purpose: "abort" }] };
  }
  const current = power.suspends[0];
  const asleep: PowerRecord = {
    ...power,
    busy: undefined,
    state: "asleep",
    sequence: power.sequence + 1,
    asleepSince: now,
    fired: [],
  };
  const steps: Step[] = [notify(container, "asleep", asleep.sequence, now)];
  if (current?.maxSleepMs !== undefined) {
    steps.push({
      type: "power_timer",
      container,
      key: "max_sleep",
      delayMs: current.maxSleepMs,
      event: { type: "wake", source: RESUME_REASON_TIMEOUT },
    });
  }
  const next = withPower(state, record, asleep);
  // Traffic that arrived while the freeze ran wakes it right away.
  const proxy = pendingProxy(asleep);
  if (proxy !== undefined) {
    const woken = wakeFired(next, container, proxy);
    return { state: woken.state, steps: [...steps, ...woken.steps] };
  }
  return { state: next, steps };
}

/** A wake source fired (or the maximum sleep passed). */
export function wakeFired(state: RuntimeState, container: ContainerId, source: string): T {
  const record = state.containers.get(container);
  const power = record?.process?.power;
  if (!record || !power) return { state, steps: [] };
  const registered = source === RESUME_REASON_TIMEOUT || power.sources.some((s) => s.name === source);
  if (!registered || (power.state !== "asleep" && power.busy !== "wake-thaw")) return { state, steps: [] };
  if (power.fired.includes(source)) return { state, steps: [] };
  const fired = [...power.fired, source];
  if (power.busy === "wake-thaw") return { state: withPower(state, record, { ...power, fired }), steps: [] };
  return {
    state: withPower(state, record, { ...power, busy: "wake-thaw", fired }),
    steps: [
      { type: "thaw", container, purpose: "wake" },
      { type: "cancel_power_timer", container, key: "max_sleep" },
    ],
  };
}

/** The freezer thawed the container (after a wake, a resume, or a lock found after the freeze). */
export function thawDone(state: RuntimeState, container: ContainerId, now: number): T {
  const record = state.containers.get(container);
  const power = record?.process?.power;
  if (!record || !power?.busy) return { state, steps: [] };
  if (power.busy === "resume-thaw") {
    const next = withPower(state, record, { ...power, busy: undefined, state: "awake", waiting: [] });
    return { state: next, steps: power.waiting.flatMap((r) => answer(r, simple("resume", container))) };
  }
  if (power.state !== "asleep") {
    // A lock was found after the freeze: the container never slept.
    const next = withPower(state, record, { ...power, busy: undefined, state: "awake" });
    return finishSuspend(
      next,
      container,
      suspendError(container, { type: "wake_locks_exist", container }),
      now,
    );
  }
  const order = power.sources.map((s) => s.name);
  const reasons = [...power.fired].sort((a, b) => rank(order, a) - rank(order, b));
  const suspendTime = Math.max(0, now - (power.asleepSince ?? now)) * 1_000_000;
  const reason = reasons.join(",");
  const next = withPower(state, record, {
    ...power,
    busy: undefined,
    state: "awake",
    sequence: power.sequence + 1,
    asleepSince: undefined,
    fired: [],
    lastSuspend: { suspend_time: suspendTime, resume_reason: reason },
    lastActivity: now,
  });
  return finishSuspend(next, container, suspendResponse(container, suspendTime, reason), now, [
    notify(container, "awake", power.sequence + 1, now),
  ]);
}

/** Registration order; the timeout constant comes last. */
function rank(order: string[], name: string): number {
  const i = order.indexOf(name);
  return i < 0 ? order.length : i;
}

// ---------------------------------------------------------------------------------------------
// the watch view

export function powerInfo(power: PowerRecord): PowerInfo {
  return {
    state: power.state,
    sequence: power.sequence,
    locks: power.locks.map((l) => ({
      name: l.name,
      holder: l.holder,
      ...(l.expiresAt ? { expires_at_ms: l.expiresAt } : {}),
    })),
    sources: power.sources.map((s) => ({ name: s.name, source: s.source })),
    counters: { ...power.counters },
    last_suspend: power.lastSuspend,
  };
}

/** Ends whatever power work a container had when it exits (or a checkpoint ended it). */
export function powerEndedByExit(record: ContainerRecord, now: number): Step[] {
  const power = record.process?.power;
  if (!power) return [];
  const container = record.id;
  const steps: Step[] = [{ type: "release_power", container }];
  for (const s of power.suspends) {
    steps.push(
      ...answer(
        s.reply,
        suspendError(container, { type: "suspend_failure", container, error: "the container exited" }),
      ),
    );
  }
  for (const r of power.waiting)
    steps.push(
      ...answer(
        r,
        simple(power.busy === "resume-thaw" ? "resume" : "pause", container, notRunning(container)),
      ),
    );
  if (power.state === "asleep") steps.push(notify(container, "awake", power.sequence + 1, now));
  return steps;
}

/** Whether the freezer holds (or is about to hold) the container: a kill must thaw after SIGKILL. */
export function isFrozen(record: ContainerRecord): boolean {
  const power = record.process?.power;
  return (
    power !== undefined &&
    (power.state !== "awake" || power.busy === "suspend-freeze" || power.busy === "pause-freeze")
  );
}
