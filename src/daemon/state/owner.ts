/**
 * The single owner of the runtime state. It is the only subscriber that replaces the state:
 * each event goes through a pure transition, and the resulting steps go to the executors.
 *
 * INVARIANTS: the state is replaced only inside `handle`, which the event loop calls one event
 * at a time; executors run the steps after the transition, so a step never sees a half-applied
 * state.
 */
import { checkpointFailed, containerCheckpointed } from "./checkpoint.js";
import type { DaemonEvent, JobResult } from "../events/types.js";
import { NO_OVERRIDES, type RuntimeState } from "./model.js";
import { installCommitted, mountsDone, uninstalled, uploadReceived } from "./packages.js";
import {
  containerExited,
  containerStarted,
  containerStartFailed,
  imagesMounted,
  memoryEvent,
  restartDue,
  startContainer,
} from "./containers.js";
import { adopted, containerPrepared, prepareContainer } from "./prepare.js";
import { freezeDone, thawDone, wakeFired } from "./power.js";
import { idleCheck, lockRelease, proxyMessages, proxyOpened, sessionClosed } from "./wake.js";
import { handleRequest, type TokenContext } from "./requests.js";
import type { Step, Transition } from "./steps.js";
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

  handle(event: DaemonEvent): void {
    let transition: Transition<RuntimeState>;
    try {
      transition = this.transition(event);
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

  private transition(event: DaemonEvent): Transition<RuntimeState> {
    switch (event.kind) {
      case "console_request":
        return handleRequest(this.current, event.peer, event.request, event.reply, Date.now(), this.tokens);
      case "shutdown":
        if (this.current.shuttingDown) return { state: this.current, steps: [] };
        return {
          state: { ...this.current, shuttingDown: true },
          steps: [{ type: "shutdown", reason: event.reason }],
        };
      case "job":
        return jobDone(this.current, event.result);
      case "container":
        switch (event.event.type) {
          case "exit":
            return containerExited(this.current, event.container, event.event.status, event.event.instance);
          case "restart_due":
            return restartDue(this.current, event.container);
          case "cgroup_memory":
            return memoryEvent(this.current, event.container, event.event.memory);
          case "freeze_done":
            return freezeDone(this.current, event.container, event.event.error, Date.now());
          case "thaw_done":
            return thawDone(this.current, event.container, Date.now());
          case "wake":
            return wakeFired(this.current, event.container, event.event.source);
          case "lock_expired":
            return lockRelease(this.current, event.container, event.event.name, undefined, Date.now());
          case "proxy_messages":
            return proxyMessages(
              this.current,
              event.container,
              event.event.channel,
              event.event.count,
              Date.now(),
            );
          case "proxy_opened":
            return proxyOpened(
              this.current,
              event.container,
              event.event.channel,
              event.event.reply,
              event.event.error,
            );
          case "console_closed":
            return sessionClosed(this.current, event.container, event.event.holder, Date.now());
          case "idle_check":
            return idleCheck(this.current, event.container, Date.now());
          default:
            // cgroup and power events are handled by the resources and power issues.
            return { state: this.current, steps: [] };
        }
    }
  }
}

function jobDone(state: RuntimeState, result: JobResult): Transition<RuntimeState> {
  switch (result.type) {
    case "upload_received":
      return uploadReceived(state, result.pkg, result.tempPath, result.reply);
    case "install_committed":
      return installCommitted(state, result);
    case "mounted":
      return mountsDone(state, result);
    case "uninstalled":
      return uninstalled(state, result);
    case "container_started":
      return containerStarted(state, result);
    case "container_start_failed":
      return containerStartFailed(state, result);
    case "adopted":
      return adopted(state, result.instances);
    case "images_mounted":
      return imagesMounted(state, result.mounted);
    case "container_prepared":
      return containerPrepared(state, result.container, result.pid);
    case "prepare_due":
      return prepareContainer(state, result.container, undefined);
    case "autostart":
      return startContainer(state, result.container, NO_OVERRIDES, "autostart");
    case "container_checkpointed":
      return containerCheckpointed(state, result.container, result.reply, Date.now());
    case "container_checkpoint_failed":
      return checkpointFailed(state, result.container, result.error, result.reply);
  }
}
