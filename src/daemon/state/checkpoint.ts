/**
 * Checkpoint and restore (CRIU snapshots) as pure transitions. What a checkpoint means for the
 * state machine:
 * - Only a running, awake instance that nobody asked to stop can be checkpointed. While the
 *   runtime dumps it the phase is `checkpointing`: it still counts as the container's instance,
 *   and an exit during the dump is final, never restarted by the policy (lifecycle.ts).
 * - A completed checkpoint stops the container, as `runc checkpoint` does by default: the process
 *   record goes, the container gets a `checkpoint` record (the instance's start overrides), and
 *   there is no `exit` notification: the process did not end, it lives on in the image.
 * - A failed checkpoint leaves the instance running (the runtime resumes it after a failed dump);
 *   if it died meanwhile, its exit follows as usual.
 * - `restore` starts the container from the image, like a start (limits, resources, one instance
 *   per name), with the checkpointed overrides and `startedBy: "restore"`. Once it runs, the
 *   checkpoint is used up: the record and the image go. A failed restore keeps both.
 * - A plain `start` ignores the checkpoint (it stays for a later restore); uninstall removes it.
 *
 * Whether CRIU works is the executor's knowledge (probed at daemon start): an unsupported host
 * answers `unsupported` through `container_checkpoint_failed`.
 */
import type { ContainerId } from "../../protocol/container.js";
import type { WireError } from "../../protocol/messages.js";
import type { Reply } from "../events/types.js";
import { startContainer } from "./containers.js";
import { canCheckpoint, livePhase } from "./lifecycle.js";
import { withContainer, type RuntimeState } from "./model.js";
import { powerEndedByExit } from "./power.js";
import type { Step, Transition } from "../events/steps.js";
import { failureToWire } from "../errors.js";
import { containerResponse, stopResponse } from "../responses.js";

type T = Transition<RuntimeState>;

function answer(
  state: RuntimeState,
  reply: Reply,
  kind: "checkpoint" | "restore",
  container: ContainerId,
  error?: WireError,
): T {
  return { state, steps: [{ type: "reply_to", reply, response: containerResponse(kind, container, error) }] };
}

export function checkpointRequest(state: RuntimeState, container: ContainerId, reply: Reply): T {
  const record = state.containers.get(container);
  if (!record || record.busy === "install")
    return answer(state, reply, "checkpoint", container, { type: "invalid_container", container });
  const process = record.process;
  if (!process)
    return answer(state, reply, "checkpoint", container, { type: "stop_container_not_started", container });
  const refuse = (cause: string): T =>
    answer(state, reply, "checkpoint", container, {
      type: "invalid_arguments",
      cause: `${container}: ${cause}`,
    });
  if (!canCheckpoint(process))
    return refuse(
      `only a running container can be checkpointed (it is ${process.stopRequested ? "stopping" : process.phase})`,
    );
  // The runtime's restore passes no extra fds: an image of a socket-holding container is useless.
  if (Object.keys(record.pkg.npk.manifest.sockets ?? {}).length > 0)
    return refuse(
      "a container with manifest sockets cannot be checkpointed (its restore could not pass them)",
    );
  if (process.power.state !== "awake" || process.power.busy !== undefined)
    return refuse(`the container is ${process.power.busy ?? process.power.state}: resume it first`);
  if (state.shuttingDown)
    return answer(state, reply, "checkpoint", container, failureToWire({ kind: "shutting_down" }));
  return {
    state: withContainer(state, {
      ...record,
      process: { ...process, phase: livePhase(process.phase, "checkpoint") },
    }),
    steps: [{ type: "checkpoint_container", container, reply }],
  };
}

export function containerCheckpointed(
  state: RuntimeState,
  container: ContainerId,
  reply: Reply,
  now: number,
): T {
  const record = state.containers.get(container);
  const process = record?.process;
  if (!record || !process)
    return answer(state, reply, "checkpoint", container, {
      type: "unexpected",
      error: "the instance vanished",
    });
  const steps: Step[] = [
    ...powerEndedByExit(record, now),
    { type: "cleanup_container", container },
    {
      type: "log",
      level: "info",
      container,
      message: "checkpointed: stopped, its image waits for a restore",
    },
    { type: "reply_to", reply, response: containerResponse("checkpoint", container) },
  ];
  // A stop that arrived during the dump is answered by it: the runtime SIGKILLed the dumped tree.
  for (const stopReply of process.stopReplies) {
    steps.push({
      type: "reply_to",
      reply: stopReply,
      response: stopResponse(container, { type: "signalled", signal: 9 }),
    });
  }
  return {
    state: withContainer(state, {
      ...record,
      process: undefined,
      checkpoint: { overrides: process.overrides, at: now },
    }),
    steps,
  };
}

export function checkpointFailed(
  state: RuntimeState,
  container: ContainerId,
  error: WireError,
  reply: Reply,
): T {
  const record = state.containers.get(container);
  const process = record?.process;
  const answered = answer(state, reply, "checkpoint", container, error);
  // Still ours and not stopped meanwhile: it runs on as before.
  if (!record || process?.phase !== "checkpointing") return answered;
  return {
    state: withContainer(state, {
      ...record,
      process: { ...process, phase: livePhase(process.phase, "checkpoint_failed") },
    }),
    steps: [
      { type: "log", level: "warn", container, message: `checkpoint failed: ${describe(error)}` },
      ...answered.steps,
    ],
  };
}

export function restoreRequest(state: RuntimeState, container: ContainerId, reply: Reply, now: number): T {
  const record = state.containers.get(container);
  if (!record || record.busy === "install")
    return answer(state, reply, "restore", container, { type: "invalid_container", container });
  if (!record.checkpoint)
    return answer(state, reply, "restore", container, {
      type: "invalid_arguments",
      cause: `${container} has no checkpoint to restore`,
    });
  const overrides = record.checkpoint.overrides;
  return startContainer(state, container, { overrides, startedBy: "restore", reply, now, restore: true });
}

function describe(error: WireError): string {
  if (error.type === "unsupported") return `unsupported (${error.request})`;
  if (error.type === "unexpected") return error.error;
  return error.type;
}
