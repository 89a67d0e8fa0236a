/**
 * The single owner of the runtime state. It is the only subscriber that replaces the state:
 * each event goes through a pure transition, and the resulting steps go to the executors.
 *
 * INVARIANTS: the state is replaced only inside `handle`, which the event loop calls one event
 * at a time; executors run the steps after the transition, so a step never sees a half-applied
 * state.
 */
import { criContainerAdded, criContainerRemoved, criStartRequested } from "./cri.js";
import { checkpointFailed, containerCheckpointed } from "./checkpoint.js";
import type { ContainerId } from "../../protocol/container.js";
import type { ContainerEvent, DaemonEvent, JobResult } from "../events/types.js";
import { NO_OVERRIDES } from "../events/data.js";
import type { RuntimeState } from "./model.js";
import { installCommitted, mountsDone, preparedDiscarded, uninstalled, uploadReceived } from "./packages.js";
import {
  containerExited,
  containerStarted,
  containerStartFailed,
  imagesMounted,
  memoryEvent,
  prepareContainer,
  restartDue,
  startContainer,
} from "./containers.js";
import { adopted, containerPrepared } from "./prepare.js";
import { imagesReleased, trimMountCache } from "./mount-cache.js";
import { freezeDone, thawDone, wakeFired } from "./power.js";
import { idleCheck, lockRelease, proxyDropped, proxyMessages, proxyOpened, sessionClosed } from "./wake.js";
import { handleRequest, type TokenContext } from "./requests.js";
import type { Step, Transition } from "../events/steps.js";
import { toWireError } from "../errors.js";

export type StepExecutor = (step: Step, event: DaemonEvent) => void;

export class StateOwner {
  constructor(
    private current: RuntimeState,
    private readonly execute: StepExecutor,
    private readonly tokens: TokenContext,
  ) {}

  get state(): RuntimeState {
    return this.current;
  }

  /** `now`: when the event was enqueued (events/loop.ts); the transitions' only clock. */
  handle(event: DaemonEvent, now: number): void {
    let transition: Transition<RuntimeState>;
    try {
      // Instances that ended leave their images to the mount cache (state/mount-cache.ts).
      transition = trimMountCache(this.current, this.transition(event, now), now);
    } catch (e) {
      // A bug in a transition must not leave a client without an answer; the state is unchanged.
      if (event.kind === "console_request") {
        event.reply({ type: "error", error: toWireError(e) });
      }
      throw e;
    }
    this.current = transition.state;
    for (const step of transition.steps) this.execute(step, event);
  }

  private transition(event: DaemonEvent, now: number): Transition<RuntimeState> {
    switch (event.kind) {
      case "console_request":
        return handleRequest(this.current, event.peer, event.request, event.reply, now, this.tokens);
      case "shutdown":
        if (this.current.shuttingDown) return { state: this.current, steps: [] };
        return {
          state: { ...this.current, shuttingDown: true },
          steps: [{ type: "shutdown", reason: event.reason }],
        };
      case "job":
        return jobDone(this.current, event.result, now);
      case "container":
        return containerEvent(this.current, event.container, event.event, now);
      default: {
        const unrouted: never = event;
        throw new Error(`unrouted event ${JSON.stringify(unrouted)}`);
      }
    }
  }
}

function containerEvent(
  state: RuntimeState,
  container: ContainerId,
  event: ContainerEvent,
  now: number,
): Transition<RuntimeState> {
  switch (event.type) {
    case "exit":
      return containerExited(state, container, event.status, event.instance, now, event.runtimeError);
    case "restart_due":
      return restartDue(state, container, now);
    case "cgroup_memory":
      return memoryEvent(state, container, event.memory);
    case "freeze_done":
      return freezeDone(state, container, event.error, now);
    case "thaw_done":
      return thawDone(state, container, now);
    case "wake":
      return wakeFired(state, container, event.source);
    case "lock_expired":
      return lockRelease(state, container, event.name, undefined, now);
    case "proxy_messages":
      return proxyMessages(state, container, event.channel, event.count, now);
    case "proxy_dropped":
      return proxyDropped(state, container, event.channel, event.count);
    case "proxy_opened":
      return proxyOpened(state, container, event.channel, event.reply, event.error);
    case "console_closed":
      return sessionClosed(state, container, event.holder, now);
    case "idle_check":
      return idleCheck(state, container, now);
    default: {
      const unrouted: never = event;
      throw new Error(`unrouted container event ${JSON.stringify(unrouted)}`);
    }
  }
}

function jobDone(state: RuntimeState, result: JobResult, now: number): Transition<RuntimeState> {
  switch (result.type) {
    case "upload_received":
      return uploadReceived(state, result.pkg, result.tempPath, result.reply);
    case "install_committed":
      return installCommitted(state, result);
    case "mounted":
      return mountsDone(state, result);
    case "prepared_discarded":
      return preparedDiscarded(state, result);
    case "uninstalled":
      return uninstalled(state, result);
    case "cri_container_added":
      return criContainerAdded(state, result);
    case "cri_container_removed":
      return criContainerRemoved(state, result);
    case "cri_start_requested":
      return criStartRequested(state, result, now);
    case "images_released":
      return imagesReleased(state, result);
    case "container_started":
      return containerStarted(state, result);
    case "container_start_failed":
      return containerStartFailed(state, result);
    case "adopted":
      return adopted(state, result.instances);
    case "images_mounted":
      return imagesMounted(state, result.mounted);
    case "container_prepared":
      return containerPrepared(state, result.container, result.pid, now);
    case "prepare_due":
      return prepareContainer(state, result.container, undefined, now);
    case "autostart":
      return startContainer(state, result.container, {
        overrides: NO_OVERRIDES,
        startedBy: "autostart",
        now,
      });
    case "container_checkpointed":
      return containerCheckpointed(state, result.container, result.reply, now);
    case "container_checkpoint_failed":
      return checkpointFailed(state, result.container, result.error, result.reply);
    default: {
      const unrouted: never = result;
      throw new Error(`unrouted job result ${JSON.stringify(unrouted)}`);
    }
  }
}
