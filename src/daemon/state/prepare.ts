/**
 * Prepared instances (docs/executor.md) and instances re-adopted after a daemon
 * restart, as pure transitions. A prepared instance is a process record in phase `preparing` or
 * `prepared` (lifecycle.ts): it counts as the container's one instance and against the limits,
 * and a start uses it (state/containers.ts: `prepareContainer`, `startContainer`).
 */
import type { ContainerId } from "../../protocol/container.js";
import type { ExitStatus, WireError } from "../../protocol/messages.js";
import { livePhase } from "./lifecycle.js";
import type { AdoptedInstance } from "../events/data.js";
import { initialPower, withContainer, type ContainerRecord, type RuntimeState } from "./model.js";
import { uninstallRequest } from "./packages.js";
import { describeStatus } from "./status.js";
import type { Step, Transition } from "../events/steps.js";
import { containerResponse, stopResponse } from "../responses.js";
import { manifestPowerSteps } from "./wake.js";

type T = Transition<RuntimeState>;

/** The runtime created the prepared instance: its init waits for the start. */
export function containerPrepared(state: RuntimeState, container: ContainerId, pid: number, now: number): T {
  const record = state.containers.get(container);
  if (record?.process?.phase !== "preparing") return { state, steps: [] };
  const reply = record.process.startReply;
  const phase = livePhase(record.process.phase, "created");
  return {
    state: withContainer(state, {
      ...record,
      process: { ...record.process, phase, pid, startedAt: now, startReply: undefined },
    }),
    steps: [
      { type: "log", level: "info", container, message: `prepared (init pid ${pid} waits for the start)` },
      ...(reply
        ? [
            {
              type: "reply_to" as const,
              reply,
              response: containerResponse("prepare", container),
            },
          ]
        : []),
    ],
  };
}

/**
 * A prepared instance ended without having been started: discarded (uninstall, shutdown, a cold
 * start) or broken. Nothing ran, so there is no `exit` notification.
 */
export function preparedEnded(state: RuntimeState, record: ContainerRecord, status: ExitStatus): T {
  const container = record.id;
  const process = record.process!;
  const steps: Step[] = [
    { type: "cleanup_container", container },
    { type: "log", level: "info", container, message: `prepared instance ended (${describeStatus(status)})` },
  ];
  if (process.startReply) {
    const error: WireError = {
      type: "start_container_failed",
      container,
      error: `prepare failed: ${describeStatus(status)}`,
    };
    steps.push({
      type: "reply_to",
      reply: process.startReply,
      response: containerResponse("prepare", container, error),
    });
  }
  for (const reply of process.stopReplies) {
    steps.push({
      type: "reply_to",
      reply,
      response: stopResponse(container, status),
    });
  }
  const next = withContainer(state, { ...record, process: undefined, uninstallAfterExit: undefined });
  const pending = record.uninstallAfterExit;
  if (!pending) return { state: next, steps };
  const uninstall = uninstallRequest(
    next,
    { type: "uninstall", container, wipe: pending.wipe },
    pending.reply,
  );
  return { state: uninstall.state, steps: [...steps, ...uninstall.steps] };
}

/**
 * Instances a previous daemon left: each gets its process record back (running with its
 * original init pid). Those that ended meanwhile get their exit event later, which ends them
 * exactly like a live exit.
 *
 * A running one starts `awake` (the dead daemon's wake sources, locks, pending suspends and
 * timers are gone), so the freezer must agree: it is thawed (it may have been asleep or paused
 * when the daemon died, and nothing would ever wake it), and its manifest proxies and idle timer
 * start again as after a start.
 */
export function adopted(state: RuntimeState, instances: AdoptedInstance[]): T {
  let next = state;
  const steps: Step[] = [];
  for (const i of instances) {
    const record = next.containers.get(i.container);
    if (!record) {
      steps.push({
        type: "log",
        level: "warn",
        container: i.container,
        message: "left by a previous daemon but no longer installed",
      });
      steps.push({ type: "cleanup_container", container: i.container });
      continue;
    }
    if (!i.prepared && i.pid !== undefined)
      steps.push({ type: "attach_power", container: i.container, cgroupPath: i.cgroupPath, pid: i.pid });
    next = withContainer(next, {
      ...record,
      process: {
        phase: livePhase("none", i.prepared ? "adopt_prepared" : "adopt_running"),
        pid: i.pid,
        startedAt: i.startedAt,
        startedBy: i.startedBy,
        overrides: i.overrides,
        resources: i.resources,
        stopReplies: [],
        stopRequested: false,
        power: initialPower(i.startedAt),
      },
    });
    // Its images were most likely mounted by its start: the mount cache may release them once
    // unused (state/mount-cache.ts). Other mounts a previous daemon left stay, as it cannot be
    // known whether a `mount` request made them.
    for (const id of [i.container, ...i.resources]) {
      const image = next.containers.get(id);
      if (image?.mount && image.mountedBy === undefined)
        next = withContainer(next, { ...image, mountedBy: "start" });
    }
    // `pid` is set for a live instance only; one that ended meanwhile gets its exit next.
    if (!i.prepared && i.pid !== undefined) {
      steps.push({ type: "thaw", container: i.container, purpose: "wake" });
      steps.push(...manifestPowerSteps(record));
    }
  }
  return { state: next, steps };
}
