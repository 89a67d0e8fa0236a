/**
 * The lifecycle of a container instance: one phase type, the table of allowed moves, and the
 * questions ("may I start, kill, pause, checkpoint now?") answered from it. Every transition in
 * state/ asks here; nothing else in the daemon keeps a phase of its own (the executors keep
 * handles: monitor connections, timers, cleanups).
 *
 * A container has at most one instance. `none` stands for "no instance" (no process record):
 * the phase before the first start and after an exit.
 *
 *   none ──prepare──▶ preparing ──created──▶ prepared
 *   none, preparing, prepared ──start──▶ starting ──started──▶ running
 *   running ──checkpoint──▶ checkpointing ──checkpoint_failed──▶ running
 *   any instance ──stop──▶ stopping          (a second stop joins the first)
 *   any instance ──exit──▶ none              (the only way an instance that ran ends)
 *
 * The rule for kill, written once: a kill is accepted in every phase that has an instance and
 * does not change the phase; it records the intent (`stopRequested`: the exit that follows is
 * final, never restarted). The signal itself goes out once the instance has a process: the
 * container executor delivers a kill of a `starting` (or `preparing`) instance after its start
 * settled, to the init the runtime created. A kill of a start that fails before any process
 * existed is answered with an error, and the start's failure ends the instance.
 *
 * `stopRequested` is a fact beside the phase, not a phase: a kill keeps an instance in whatever
 * phase it is in (a killed `starting` instance still reports its start and becomes `running`),
 * so "is the end final" is orthogonal to "what is the process doing".
 *
 * One model, and its projections. The phase here is the daemon's only phase of an instance.
 * Three other views exist and are named for what they are, never consulted by a guard:
 * - the C monitor's `enum phase` (native/monitor/monitor.h): what one monitor process is doing;
 * - its projection on the wire, `MonitorPhase` (monitor/protocol.ts, STATE frames), read once,
 *   at adoption (containers/adopt.ts), to give an adopted instance its phase here;
 * - in the container executor, `ExitReport` (owed, decided, posted): where the report of an
 *   instance's one exit stands, not what the instance does; and `MonitorConnection.connection`
 *   (connecting, connected, closed): the socket to the monitor, not the instance.
 *
 *   C monitor `enum phase`   wire `MonitorPhase`   daemon `Phase` (this file)
 *   PH_CREATING              creating              preparing (prepare) or starting (start)
 *   PH_RESTORING             creating              starting (restore)
 *   PH_CREATED               created               prepared (prepare) or starting (its START sent)
 *   PH_STARTING              running               starting
 *   PH_RUNNING               running               running, stopping or checkpointing
 *   PH_EXITING               running               as PH_RUNNING: the exit is not reported yet
 *   PH_EXITED                exited                none, once the `exit` event is handled
 *
 * At adoption: `running` is `adopt_running`; `creating` and `created` are `adopt_prepared` when
 * the instance record says it was prepared, else the instance is ended without a report;
 * `exited` reports the exit found.
 */
import type { ProcessRecord } from "./model.js";

/** The phase of an instance that exists (a process record). */
export type Phase = "preparing" | "prepared" | "starting" | "running" | "stopping" | "checkpointing";

/** `none`: the container has no instance. */
export type InstancePhase = Phase | "none";

export const PHASES: readonly InstancePhase[] = [
  "none",
  "preparing",
  "prepared",
  "starting",
  "running",
  "stopping",
  "checkpointing",
];

/** What moves an instance: a verb of a request, or an executor's report. */
export type LifecycleEvent =
  /** `prepare` request, or `prepare: true` at daemon start and after an exit. */
  | "prepare"
  /** `start`, `restore`, autostart, a restart by the policy, a reboot from inside. */
  | "start"
  /** The runtime created the prepared instance (`container_prepared`). */
  | "created"
  /** The instance runs (`container_started`). */
  | "started"
  /** The start failed before any process existed (`container_start_failed`). */
  | "start_failed"
  | "stop"
  | "kill"
  /** The instance ended (`exit`, from its monitor or for a monitor that vanished). */
  | "exit"
  | "checkpoint"
  /** The dump is written and the dumped tree ended. */
  | "checkpointed"
  | "checkpoint_failed"
  /** A prepared instance is discarded by an umount (or uninstall) of its image. */
  | "discarded"
  /** A daemon restart found the instance running under its monitor. */
  | "adopt_running"
  /** A daemon restart found the instance created and waiting for its start. */
  | "adopt_prepared";

export const LIFECYCLE_EVENTS: readonly LifecycleEvent[] = [
  "prepare",
  "start",
  "created",
  "started",
  "start_failed",
  "stop",
  "kill",
  "exit",
  "checkpoint",
  "checkpointed",
  "checkpoint_failed",
  "discarded",
  "adopt_running",
  "adopt_prepared",
];

const ALIVE: Phase[] = ["preparing", "prepared", "starting", "running", "stopping", "checkpointing"];
const every = <P extends InstancePhase>(to: (from: Phase) => P): Partial<Record<InstancePhase, P>> =>
  Object.fromEntries(ALIVE.map((p) => [p, to(p)]));

/**
 * The allowed moves: event → (from → to). A pair missing here is refused: a request answers its
 * documented error, an executor's late report (for an instance already ended) is ignored.
 */
const TRANSITIONS: { readonly [E in LifecycleEvent]: Partial<Record<InstancePhase, InstancePhase>> } = {
  prepare: { none: "preparing" },
  // A start uses a prepared (or still preparing) instance of the same container.
  start: { none: "starting", preparing: "starting", prepared: "starting" },
  created: { preparing: "prepared" },
  // A stop during the start keeps it stopping: the stop's SIGTERM waits for the start.
  started: { starting: "running", stopping: "stopping" },
  start_failed: { preparing: "none", starting: "none", stopping: "none" },
  stop: every(() => "stopping"),
  kill: every((p) => p),
  exit: every(() => "none"),
  checkpoint: { running: "checkpointing" },
  // A stop that came during the dump is answered by it.
  checkpointed: { checkpointing: "none", stopping: "none" },
  checkpoint_failed: { checkpointing: "running", stopping: "stopping" },
  discarded: { preparing: "none", prepared: "none", stopping: "none" },
  adopt_running: { none: "running" },
  adopt_prepared: { none: "prepared" },
};

export function phaseOf(process: Pick<ProcessRecord, "phase"> | undefined): InstancePhase {
  return process?.phase ?? "none";
}

/** The phase `event` moves `from` to, or undefined when the table refuses it. */
export function nextPhase(from: InstancePhase, event: LifecycleEvent): InstancePhase | undefined {
  return TRANSITIONS[event][from];
}

export function allows(from: InstancePhase, event: LifecycleEvent): boolean {
  return nextPhase(from, event) !== undefined;
}

/** `to`, a phase of an existing instance: for records the table moves between live phases. */
export function livePhase(from: InstancePhase, event: LifecycleEvent): Phase {
  const to = nextPhase(from, event);
  if (to === undefined || to === "none") throw new Error(`lifecycle: ${event} from ${from} is refused`);
  return to;
}

/** Created by the runtime (or being created), waiting on the exec fifo; nothing of the app ran. */
export function isPrepared(process: Pick<ProcessRecord, "phase"> | undefined): boolean {
  const phase = phaseOf(process);
  return phase === "preparing" || phase === "prepared";
}

/** A start (or a prepare, with `prepareOnly`) of this container's instance is allowed. */
export function canStart(process: Pick<ProcessRecord, "phase"> | undefined, prepareOnly = false): boolean {
  return allows(phaseOf(process), prepareOnly ? "prepare" : "start");
}

/** There is an instance to signal (see the kill rule above). */
export function canKill(process: Pick<ProcessRecord, "phase"> | undefined): boolean {
  return allows(phaseOf(process), "kill");
}

export function canStop(process: Pick<ProcessRecord, "phase"> | undefined): boolean {
  return allows(phaseOf(process), "stop");
}

/**
 * Power requests (pause, resume, suspend, wake locks, wake sources, proxy channels) act on an
 * instance that runs and that nobody asked to end: no freeze can catch a dying container (a kill
 * always wins).
 */
export function canPower(process: Pick<ProcessRecord, "phase" | "stopRequested"> | undefined): boolean {
  return process !== undefined && process.phase === "running" && !process.stopRequested;
}

/** Only a running instance nobody asked to end can be dumped (state/checkpoint.ts adds power). */
export function canCheckpoint(process: Pick<ProcessRecord, "phase" | "stopRequested"> | undefined): boolean {
  return allows(phaseOf(process), "checkpoint") && process?.stopRequested === false;
}

/** An umount (or uninstall) may discard the instance: a prepared one, nothing of the app ran. */
export function canDiscard(process: Pick<ProcessRecord, "phase"> | undefined): boolean {
  return isPrepared(process);
}

/**
 * The exit that ends this instance is final: the restart policy and a reboot do not start it
 * again. A kill, a stop or a discard asked for the end; a checkpoint's dump ends it on purpose.
 */
export function exitIsFinal(process: Pick<ProcessRecord, "phase" | "stopRequested">): boolean {
  return process.stopRequested || process.phase === "stopping" || process.phase === "checkpointing";
}
