/**
 * Kubernetes CRI containers in the state (docs/cri.md, "Containers"): the CRI side
 * (src/cri/containers/) asks for a container record with a synthetic package (`pkg.cri`, in
 * the `cri` repository) on CreateContainer and for its removal on RemoveContainer. Everything
 * between (start, stop, kill, exits, adoption) is the ordinary path: a CRI container is a
 * container. These two transitions are the only ones that add or remove a record outside
 * install and uninstall; the console's install/uninstall/mount/umount refuse CRI containers.
 */
import type { JobResult } from "../events/types.js";
import type { Transition } from "../events/steps.js";
import { failureToWire } from "../errors.js";
import { containerResponse, installResponse } from "../responses.js";
import { withContainer, withoutContainer, type ContainerRecord, type RuntimeState } from "./model.js";
import { replied } from "./packages.js";
import { startContainer } from "./containers.js";
import { NO_OVERRIDES } from "../events/data.js";

type T = Transition<RuntimeState>;

export function criContainerAdded(
  state: RuntimeState,
  r: Extract<JobResult, { type: "cri_container_added" }>,
): T {
  const container = r.container;
  if (state.shuttingDown)
    return replied(state, r.reply, installResponse({ error: failureToWire({ kind: "shutting_down" }) }));
  if (state.containers.has(container))
    return replied(state, r.reply, installResponse({ error: { type: "install_duplicate", container } }));
  return replied(
    withContainer(state, { id: container, pkg: r.pkg }),
    r.reply,
    installResponse({ container }),
    { type: "notify", notification: { type: "install", container } },
  );
}

export function criContainerRemoved(
  state: RuntimeState,
  r: Extract<JobResult, { type: "cri_container_removed" }>,
): T {
  const container = r.container;
  const record = state.containers.get(container);
  if (!record?.pkg.cri)
    return replied(
      state,
      r.reply,
      containerResponse("uninstall", container, { type: "invalid_container", container }),
    );
  if (record.process || record.busy)
    return replied(
      state,
      r.reply,
      containerResponse("uninstall", container, { type: "umount_busy", container }),
    );
  return replied(withoutContainer(state, container), r.reply, containerResponse("uninstall", container), {
    type: "notify",
    notification: { type: "uninstall", container },
  });
}

/** The kubelet's StartContainer: the one start a CRI container gets (a console `start` is refused). */
export function criStartRequested(
  state: RuntimeState,
  r: Extract<JobResult, { type: "cri_start_requested" }>,
  now: number,
): T {
  const record = state.containers.get(r.container);
  if (!record?.pkg.cri)
    return replied(
      state,
      r.reply,
      containerResponse("start", r.container, { type: "invalid_container", container: r.container }),
    );
  return startContainer(state, r.container, {
    overrides: NO_OVERRIDES,
    startedBy: "request",
    reply: r.reply,
    now,
  });
}

/** The refusal of a console request that would treat a CRI container's synthetic package as a file. */
export function criRefusal(
  record: ContainerRecord | undefined,
  what: string,
): ReturnType<typeof failureToWire> | undefined {
  return record?.pkg.cri
    ? failureToWire({ kind: "unsupported", what: `${what} of a CRI container (the kubelet owns it)` })
    : undefined;
}
