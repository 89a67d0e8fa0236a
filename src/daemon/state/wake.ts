/**
 * Wake locks, wake sources, proxy wake channels and idle suspend as pure transitions; the
 * freezer and suspend itself are in power.ts. The INVARIANTS there hold here too.
 */
import type { ContainerId } from "../../protocol/container.js";
import type { Request, WakeSource, WireError } from "../../protocol/messages.js";
import { RESUME_REASON_TIMEOUT } from "../../protocol/messages.js";
import { parseDuration } from "../../common/units.js";
import type { Reply } from "../events/types.js";
import type { ContainerRecord, RuntimeState } from "./model.js";
import { answer, notRunning, running, simple, withPower, type T } from "./power-common.js";
import { suspendRequest, wakeFired } from "./power.js";
import type { Step } from "../events/steps.js";

// ---------------------------------------------------------------------------------------------
// wake locks

export function lockAcquire(
  state: RuntimeState,
  request: Extract<Request, { type: "wake_lock_acquire" }>,
  holder: string,
  reply: Reply,
  now: number,
): T {
  const { container, name } = request;
  const record = running(state, container);
  if (!record) return { state, steps: answer(reply, simple("wake_lock", container, notRunning(container))) };
  const power = record.process!.power;
  const expiresAt = request.timeout_ms === undefined ? undefined : now + request.timeout_ms;
  const locks = [
    ...power.locks.filter((l) => l.name !== name),
    { name, holder, ...(expiresAt ? { expiresAt } : {}) },
  ];
  const next = withPower(state, record, {
    ...power,
    locks,
    lockedDuringFreeze: power.lockedDuringFreeze || power.busy === "suspend-freeze",
    lastActivity: now,
  });
  const steps: Step[] = answer(reply, simple("wake_lock", container));
  if (request.timeout_ms !== undefined) {
    steps.push({
      type: "power_timer",
      container,
      key: `lock:${name}`,
      delayMs: request.timeout_ms,
      event: { type: "lock_expired", name },
    });
  }
  return { state: next, steps };
}

export function lockRelease(
  state: RuntimeState,
  container: ContainerId,
  name: string,
  reply: Reply | undefined,
  now: number,
): T {
  const record = running(state, container);
  if (!record) return { state, steps: answer(reply, simple("wake_lock", container, notRunning(container))) };
  const power = record.process!.power;
  if (!power.locks.some((l) => l.name === name)) {
    const error: WireError = {
      type: "invalid_arguments",
      cause: `${container} holds no wake lock ${JSON.stringify(name)}`,
    };
    return { state, steps: answer(reply, simple("wake_lock", container, error)) };
  }
  const next = withPower(state, record, {
    ...power,
    locks: power.locks.filter((l) => l.name !== name),
    lastActivity: now,
  });
  return {
    state: next,
    steps: [
      ...answer(reply, simple("wake_lock", container)),
      { type: "cancel_power_timer", container, key: `lock:${name}` },
    ],
  };
}

/** A container console connection closed: the locks it held go with it. */
export function sessionClosed(state: RuntimeState, container: ContainerId, holder: string, now: number): T {
  const record = running(state, container);
  const power = record?.process?.power;
  if (!record || !power?.locks.some((l) => l.holder === holder)) return { state, steps: [] };
  return {
    state: withPower(state, record, {
      ...power,
      locks: power.locks.filter((l) => l.holder !== holder),
      lastActivity: now,
    }),
    steps: [],
  };
}

// ---------------------------------------------------------------------------------------------
// wake sources and proxy channels

export function sourceAdd(
  state: RuntimeState,
  container: ContainerId,
  name: string,
  source: WakeSource,
  reply: Reply | undefined,
): T {
  const record = running(state, container);
  if (!record)
    return { state, steps: answer(reply, simple("wake_source", container, notRunning(container))) };
  const power = record.process!.power;
  if (power.sources.some((s) => s.name === name) || name === RESUME_REASON_TIMEOUT) {
    const error: WireError = {
      type: "invalid_arguments",
      cause: `${container} already has a wake source ${JSON.stringify(name)}`,
    };
    return { state, steps: answer(reply, simple("wake_source", container, error)) };
  }
  const next = withPower(state, record, { ...power, sources: [...power.sources, { name, source }] });
  const steps: Step[] = answer(reply, simple("wake_source", container));
  if (source.type !== "proxy") steps.unshift({ type: "watch_wake_source", container, name, source });
  return { state: next, steps };
}

export function sourceRemove(state: RuntimeState, container: ContainerId, name: string, reply: Reply): T {
  const record = running(state, container);
  if (!record)
    return { state, steps: answer(reply, simple("wake_source", container, notRunning(container))) };
  const power = record.process!.power;
  if (!power.sources.some((s) => s.name === name)) {
    const error: WireError = {
      type: "invalid_arguments",
      cause: `${container} has no wake source ${JSON.stringify(name)}`,
    };
    return { state, steps: answer(reply, simple("wake_source", container, error)) };
  }
  const next = withPower(state, record, { ...power, sources: power.sources.filter((s) => s.name !== name) });
  return {
    state: next,
    steps: [
      { type: "unwatch_wake_source", container, name },
      ...answer(reply, simple("wake_source", container)),
    ],
  };
}

/** A proxy channel counted inbound messages: the counter grows, a sleeping container wakes. */
export function proxyMessages(
  state: RuntimeState,
  container: ContainerId,
  channel: string,
  count: number,
  now: number,
): T {
  const record = running(state, container);
  const power = record?.process?.power;
  if (!record || !power) return { state, steps: [] };
  const next = withPower(state, record, {
    ...power,
    counters: { ...power.counters, [channel]: (power.counters[channel] ?? 0) + count },
    lastActivity: now,
  });
  const source = power.sources.find((s) => s.source.type === "proxy" && s.source.channel === channel);
  if (!source) return { state: next, steps: [] };
  return wakeFired(next, container, source.name);
}

export function proxyHandled(
  state: RuntimeState,
  container: ContainerId,
  channel: string,
  count: number,
  reply: Reply,
): T {
  const record = running(state, container);
  if (!record) return { state, steps: answer(reply, simple("proxy", container, notRunning(container))) };
  const power = record.process!.power;
  if (!(channel in power.counters)) {
    const error: WireError = {
      type: "invalid_arguments",
      cause: `${container} has no proxy channel ${JSON.stringify(channel)}`,
    };
    return { state, steps: answer(reply, simple("proxy", container, error)) };
  }
  const counters = { ...power.counters, [channel]: Math.max(0, (power.counters[channel] ?? 0) - count) };
  return {
    state: withPower(state, record, { ...power, counters }),
    steps: answer(reply, simple("proxy", container)),
  };
}

/**
 * Counted messages the proxy could never hand over (power/proxy.ts INVARIANTS): they are taken
 * off the counter as if handled, so they cannot keep a suspend from sleeping.
 */
export function proxyDropped(state: RuntimeState, container: ContainerId, channel: string, count: number): T {
  const record = running(state, container);
  const power = record?.process?.power;
  if (!record || !power || !(channel in power.counters)) return { state, steps: [] };
  const counters = { ...power.counters, [channel]: Math.max(0, (power.counters[channel] ?? 0) - count) };
  return { state: withPower(state, record, { ...power, counters }), steps: [] };
}

/** A proxy channel opened: its counter starts at 0 and a wake source of the same name watches it. */
export function proxyOpened(
  state: RuntimeState,
  container: ContainerId,
  channel: string,
  reply: Reply | undefined,
  error?: string,
): T {
  const record = running(state, container);
  if (!record) return { state, steps: answer(reply, simple("proxy", container, notRunning(container))) };
  if (error !== undefined)
    return {
      state,
      steps: answer(reply, simple("proxy", container, { type: "invalid_arguments", cause: error })),
    };
  const power = record.process!.power;
  const sources = power.sources.some((s) => s.name === channel)
    ? power.sources
    : [...power.sources, { name: channel, source: { type: "proxy" as const, channel } }];
  const next = withPower(state, record, {
    ...power,
    sources,
    counters: { ...power.counters, [channel]: power.counters[channel] ?? 0 },
  });
  return { state: next, steps: answer(reply, simple("proxy", container)) };
}

// ---------------------------------------------------------------------------------------------
// idle suspend (Skiff): manifest `power.idle_suspend_after`

/** The manifest's idle time in ms, if it asks for idle suspend. */
function idleAfterMs(record: ContainerRecord): number | undefined {
  const text = record.pkg.npk.manifest.power?.idle_suspend_after;
  return text === undefined ? undefined : parseDuration(text);
}

/**
 * What the manifest's `power` asks of a running instance: its proxy channels opened and its first
 * idle check armed. For a freshly started instance and for one a restarted daemon re-adopted.
 */
export function manifestPowerSteps(record: ContainerRecord): Step[] {
  const steps: Step[] = [];
  for (const p of record.pkg.npk.manifest.power?.proxies ?? []) {
    const { name, listen, target } = p;
    steps.push({
      type: "open_proxy",
      container: record.id,
      name,
      listen,
      target,
      framing: p.framing ?? "newline",
    });
  }
  return [...steps, ...idleTimerSteps(record)];
}

/** Arms the first idle check of a freshly started container. */
function idleTimerSteps(record: ContainerRecord): Step[] {
  const idle = idleAfterMs(record);
  return idle === undefined
    ? []
    : [
        {
          type: "power_timer",
          container: record.id,
          key: "idle",
          delayMs: idle,
          event: { type: "idle_check" },
        },
      ];
}

/**
 * Suspends the container once it had no proxy traffic and no lock change for its idle time and
 * holds no locks; checks again later in any case. Messages older than the idle time count as
 * handled (their counters go to 0): a container that never calls `proxy_handled`, such as a plain
 * web server, still falls asleep, and one that does has handled them long ago.
 */
export function idleCheck(state: RuntimeState, container: ContainerId, now: number): T {
  const record = running(state, container);
  const idle = record ? idleAfterMs(record) : undefined;
  if (!record || idle === undefined) return { state, steps: [] };
  const power = record.process!.power;
  const quietFor = now - power.lastActivity;
  const rearm = (delayMs: number): Step => ({
    type: "power_timer",
    container,
    key: "idle",
    delayMs: Math.max(50, delayMs),
    event: { type: "idle_check" },
  });
  const idleNow =
    power.state === "awake" &&
    !power.busy &&
    power.suspends.length === 0 &&
    power.locks.length === 0 &&
    quietFor >= idle;
  if (!idleNow) return { state, steps: [rearm(power.state === "awake" ? idle - quietFor : idle)] };
  const counters = Object.fromEntries(Object.keys(power.counters).map((k) => [k, 0]));
  const handled = withPower(state, record, { ...power, counters });
  const suspended = suspendRequest(handled, container, undefined, undefined, now);
  return { state: suspended.state, steps: [...suspended.steps, rearm(idle)] };
}
