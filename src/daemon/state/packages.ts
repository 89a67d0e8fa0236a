/**
 * Package transitions: install, uninstall, mount and umount, and the completions of their
 * jobs. Pure: (state, input) -> (state, steps).
 *
 * INVARIANTS: a container has at most one job in flight (`busy`); a request that would start a
 * second one is refused at once with `mount_busy`/`umount_busy`, never queued, so every
 * request gets a definite answer. An install reserves its name:version before its file is
 * renamed into place, so two uploads of the same container cannot both succeed.
 */
import { criRefusal } from "./cri.js";
import { formatContainerId, type ContainerId } from "../../protocol/container.js";
import type { ContainerResult, Request, Response, WireError } from "../../protocol/messages.js";
import type { JobResult, MountImagesStep, Reply } from "../events/types.js";
import type { InstalledPackage } from "../events/data.js";
import {
  repositoryUsage,
  withContainer,
  withoutContainer,
  type ContainerRecord,
  type RuntimeState,
} from "./model.js";
import { allows, canDiscard, phaseOf } from "./lifecycle.js";
import type { Step, Transition } from "../events/steps.js";
import { failureToWire } from "../errors.js";
import { containerResponse, installResponse } from "../responses.js";

type T = Transition<RuntimeState>;

/** Answers through `reply` (a job's requester), then runs `more`. */
export const replied = (state: RuntimeState, reply: Reply, response: Response, ...more: Step[]): T => ({
  state,
  steps: [{ type: "reply_to", reply, response }, ...more],
});

/** Looks up a container clients may act on; undefined while it is only reserved by an install. */
export function visible(state: RuntimeState, id: ContainerId): ContainerRecord | undefined {
  const record = state.containers.get(id);
  return record && record.busy !== "install" ? record : undefined;
}

/** True while the container runs, or a running container uses it as a resource. */
export function inUse(state: RuntimeState, record: ContainerRecord): boolean {
  if (record.process) return true;
  return [...state.containers.values()].some((c) => c.process?.resources.includes(record.id));
}

export function containerIdOf(pkg: InstalledPackage): ContainerId {
  return formatContainerId(pkg.npk.manifest.name, pkg.npk.manifest.version);
}

/** A verified upload arrived: reserve its id and commit it, or refuse it. */
export function uploadReceived(
  state: RuntimeState,
  pkg: InstalledPackage,
  tempPath: string,
  reply: Reply,
): T {
  const container = containerIdOf(pkg);
  const refuse = (error: WireError): T => ({
    state,
    steps: [
      { type: "discard_upload", tempPath },
      { type: "reply_to", reply, response: installResponse({ error }) },
    ],
  });
  if (state.shuttingDown) return refuse(failureToWire({ kind: "shutting_down" }));
  if (state.containers.has(container)) return refuse({ type: "install_duplicate", container });
  const repo = state.repositories.get(pkg.repository);
  if (!repo) return refuse({ type: "invalid_repository", repository: pkg.repository });
  const usage = repositoryUsage(state, repo.id);
  if (repo.capacityNum !== undefined && usage.count + 1 > repo.capacityNum) {
    return refuse({
      type: "configuration",
      context: `repository ${repo.id} is full: it holds ${usage.count} of ${repo.capacityNum} packages`,
    });
  }
  if (repo.capacitySize !== undefined && usage.bytes + pkg.size > repo.capacitySize) {
    return refuse({
      type: "configuration",
      context: `repository ${repo.id} is full: ${usage.bytes} + ${pkg.size} bytes exceed its capacity of ${repo.capacitySize}`,
    });
  }
  return {
    state: withContainer(state, { id: container, pkg, busy: "install" }),
    steps: [{ type: "commit_install", container, pkg, tempPath, reply }],
  };
}

export function installCommitted(
  state: RuntimeState,
  r: Extract<JobResult, { type: "install_committed" }>,
): T {
  if (r.error !== undefined || r.pkg === undefined) {
    const error = { type: "unexpected" as const, error: r.error ?? "install failed" };
    return replied(withoutContainer(state, r.container), r.reply, installResponse({ error }));
  }
  return replied(
    withContainer(state, { id: r.container, pkg: r.pkg }),
    r.reply,
    installResponse({ container: r.container }),
    { type: "notify", notification: { type: "install", container: r.container } },
  );
}

export function uninstallRequest(
  state: RuntimeState,
  request: Extract<Request, { type: "uninstall" }>,
  reply: Reply,
): T {
  const container = request.container;
  const fail = (error: WireError): T =>
    replied(state, reply, containerResponse("uninstall", container, error));
  const record = visible(state, container);
  if (!record) return fail({ type: "invalid_container", container });
  const cri = criRefusal(record, "uninstall");
  if (cri) return fail(cri);
  // A prepared instance is discarded first; the uninstall goes on once it has ended.
  if (!record.busy && record.process && canDiscard(record.process)) {
    return {
      state: withContainer(state, {
        ...record,
        uninstallAfterExit: { wipe: request.wipe, reply },
        process: { ...record.process, stopRequested: true },
      }),
      steps: [{ type: "kill_container", container, signal: 9 }],
    };
  }
  if (record.busy || inUse(state, record)) return fail({ type: "umount_busy", container });
  if (state.shuttingDown) return fail(failureToWire({ kind: "shutting_down" }));
  return {
    state: withContainer(state, { ...record, busy: "uninstall" }),
    steps: [
      {
        type: "uninstall_package",
        container,
        pkg: record.pkg,
        mount: record.mount,
        wipe: request.wipe,
        reply,
      },
    ],
  };
}

export function uninstalled(state: RuntimeState, r: Extract<JobResult, { type: "uninstalled" }>): T {
  const container = r.container;
  if (r.error !== undefined) {
    const record = state.containers.get(container);
    const next = record ? withContainer(state, { ...record, busy: undefined }) : state;
    return replied(
      next,
      r.reply,
      containerResponse("uninstall", container, { type: "unexpected", error: r.error }),
    );
  }
  return replied(
    withoutContainer(state, container),
    r.reply,
    containerResponse("uninstall", container),
    { type: "notify", notification: { type: "uninstall", container } },
    // Checkpoint images are the container's (state/checkpoint.ts); one a previous daemon took too.
    { type: "discard_checkpoint", container },
  );
}

/** mount and umount: several containers at once, one result each, in request order. */
export function mountRequest(
  state: RuntimeState,
  kind: "mount" | "umount",
  containers: ContainerId[],
  reply: Reply,
): T {
  // One slot per requested container; a slot left undefined is filled by a job result.
  const immediate: (ContainerResult | undefined)[] = containers.map(() => undefined);
  const jobs: MountImagesStep["jobs"] = [];
  /** Containers whose prepared instance goes before their image (umount). */
  const discards: ContainerId[] = [];
  let next = state;
  const busyError = kind === "mount" ? "mount_busy" : "umount_busy";
  containers.forEach((container, i) => {
    const record = visible(next, container);
    const error = (e: WireError): void => void (immediate[i] = { type: "error", container, error: e });
    if (!record) return error({ type: "invalid_container", container });
    const cri = criRefusal(record, kind);
    if (cri) return error(cri);
    if (record.busy) return error({ type: busyError, container });
    // A prepared instance (nothing ran yet) is discarded by the umount; a running one refuses it.
    const discard = kind === "umount" && canDiscard(record.process);
    if (kind === "umount" && !discard && inUse(next, record))
      return error({ type: "umount_busy", container });
    if (kind === "mount" && record.mount) {
      // Asked for by name: the mount cache no longer releases it (state/mount-cache.ts).
      next = withContainer(next, { ...record, mountedBy: "request" });
      return void (immediate[i] = { type: "ok", container });
    }
    if (kind === "umount" && !record.mount) return void (immediate[i] = { type: "ok", container });
    if (state.shuttingDown) return error(failureToWire({ kind: "shutting_down" }));
    next = withContainer(next, { ...record, busy: kind });
    if (discard) discards.push(container);
    jobs.push({ container, pkg: record.pkg, handle: record.mount });
  });
  if (jobs.length === 0) {
    const results = immediate.map((r) => r!);
    return replied(next, reply, kind === "mount" ? { type: "mount", results } : { type: "umount", results });
  }
  const step: MountImagesStep = { type: "mount_images", kind, jobs, immediate, reply };
  // Prepared instances are discarded first (container executor); their umount follows
  // (`preparedDiscarded`).
  if (discards.length > 0)
    return { state: next, steps: [{ type: "discard_prepared", containers: discards, umount: step }] };
  return { state: next, steps: [step] };
}

/**
 * The prepared instances an umount discards have ended (or one could not be ended: its job is
 * answered with that error and its image stays mounted); now their images are unmounted.
 */
export function preparedDiscarded(
  state: RuntimeState,
  r: Extract<JobResult, { type: "prepared_discarded" }>,
): T {
  let next = state;
  const refused = new Map<ContainerId, WireError>();
  for (const { container, error } of r.results) {
    if (error) {
      refused.set(container, error);
      continue;
    }
    const record = next.containers.get(container);
    if (record?.process && allows(phaseOf(record.process), "discarded"))
      next = withContainer(next, { ...record, process: undefined });
  }
  const jobs = r.umount.jobs.map((job) => {
    const error = refused.get(job.container);
    return error ? { ...job, refused: error } : job;
  });
  return { state: next, steps: [{ ...r.umount, jobs }] };
}

export function mountsDone(state: RuntimeState, r: Extract<JobResult, { type: "mounted" }>): T {
  let next = state;
  const jobResults = [...r.results];
  for (const result of r.results) {
    const record = next.containers.get(result.container);
    if (!record) continue;
    const mounted =
      r.kind === "mount"
        ? result.error
          ? undefined
          : result.handle
        : result.error
          ? record.mount
          : undefined;
    // A mount request's image stays until `umount`; the mount cache never releases it.
    const mountedBy =
      r.kind === "mount" ? (mounted ? "request" : undefined) : mounted ? record.mountedBy : undefined;
    next = withContainer(next, { ...record, busy: undefined, mount: mounted, mountedBy });
  }
  const results = r.immediate.map((known): ContainerResult => {
    if (known) return known;
    const job = jobResults.shift()!;
    return job.error
      ? { type: "error", container: job.container, error: job.error }
      : { type: "ok", container: job.container };
  });
  return replied(
    next,
    r.reply,
    r.kind === "mount" ? { type: "mount", results } : { type: "umount", results },
  );
}
