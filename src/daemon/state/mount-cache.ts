/**
 * The mount cache: images a start mounted stay mounted while no instance needs them, up to
 * `mount_cache_size` of them (least recently used released first), so that a quick restart does
 * not pay the mount again and a thousand exited containers do not keep a thousand loop devices.
 * Pure: (state before, state after, now) -> (state, steps).
 *
 * An image is *used* while an instance in any phase (preparing, prepared, starting, running,
 * stopping) has it as its own image or as a resource. Only images a start mounted
 * (`mountedBy: "start"`) are released; those mounted by a `mount` request stay until `umount`,
 * and those mounted at daemon start (`mount_on_start`, or left by a previous daemon and used by
 * no adopted instance) stay too.
 *
 * INVARIANTS (releases and starts):
 * - The state forgets an image's handle when it asks for its release (`mount` → `releasing`),
 *   and sets no busy mark. A start, a `mount` request or an uninstall that comes while the
 *   release runs sees the image as not mounted and goes on: a start mounts it again, it never
 *   fails with "busy" and is never handed a handle that is going away.
 * - The package executor waits for the release of an image before mounting it again (the same
 *   mount point, the same verity device name), so the remount finds the mount point free.
 * - A release waits for the container cleanups in flight, so an instance's image is unmounted
 *   after its runtime state and cgroup are gone, never under it.
 * - `images_released` clears `releasing` only when it names the same handle (a newer release of
 *   a remounted image may be in flight); a failed release gives the handle back to the cache
 *   when the image was not mounted again meanwhile.
 */
import type { ContainerId } from "../../protocol/container.js";
import type { JobResult } from "../events/types.js";
import type { Step, Transition } from "../events/steps.js";
import { withContainer, type ContainerRecord, type RuntimeState } from "./model.js";

type T = Transition<RuntimeState>;

/** Images some instance (any phase) uses: its own, and its resources. */
export function imagesInUse(state: RuntimeState): Set<ContainerId> {
  const used = new Set<ContainerId>();
  for (const c of state.containers.values()) {
    if (!c.process) continue;
    used.add(c.id);
    for (const r of c.process.resources) used.add(r);
  }
  return used;
}

/**
 * The images of the instances that ended in this transition: every end cleans its instance up
 * (`cleanup_container`), so only those steps are looked at, not every container (events that end
 * nothing cost nothing here).
 */
function endedImages(before: RuntimeState, t: T): ContainerId[] {
  const ended: ContainerId[] = [];
  for (const step of t.steps) {
    if (step.type !== "cleanup_container") continue;
    const process = before.containers.get(step.container)?.process;
    if (!process || t.state.containers.get(step.container)?.process) continue;
    ended.push(step.container, ...process.resources);
  }
  return ended;
}

/**
 * After a transition in which instances ended: the images they used are stamped idle (`now`),
 * and the unused start-mounted images beyond `mountCacheSize`, least recently used first, are
 * released (`release_images`).
 */
export function trimMountCache(before: RuntimeState, t: T, now: number): T {
  const ended = endedImages(before, t);
  if (ended.length === 0) return t;
  const used = imagesInUse(t.state);
  const changed = new Map<ContainerId, ContainerRecord>();
  for (const id of ended) {
    const r = t.state.containers.get(id);
    if (r?.mount && !used.has(id)) changed.set(id, { ...r, idleSince: now });
  }
  const idle: ContainerRecord[] = [];
  for (const c of t.state.containers.values()) {
    const r = changed.get(c.id) ?? c;
    if (r.mount && r.mountedBy === "start" && !r.busy && !used.has(r.id)) idle.push(r);
  }
  const excess = idle.length - t.state.mountCacheSize;
  const images: Extract<Step, { type: "release_images" }>["images"] = [];
  if (excess > 0) {
    // Oldest first; an image never stamped (its start failed before any instance) is oldest.
    idle.sort((a, b) => (a.idleSince ?? -Infinity) - (b.idleSince ?? -Infinity) || a.id.localeCompare(b.id));
    for (const r of idle.slice(0, excess)) {
      images.push({ container: r.id, handle: r.mount! });
      changed.set(r.id, { ...r, mount: undefined, mountedBy: undefined, releasing: r.mount });
    }
  }
  if (changed.size === 0) return t;
  let state = t.state;
  for (const r of changed.values()) state = withContainer(state, r);
  return {
    state,
    steps: images.length > 0 ? [...t.steps, { type: "release_images", images }] : t.steps,
  };
}

/** `release_images` ended. */
export function imagesReleased(state: RuntimeState, r: Extract<JobResult, { type: "images_released" }>): T {
  let next = state;
  const steps: Step[] = [];
  for (const { container, handle, error } of r.results) {
    const record = next.containers.get(container);
    if (!record || record.releasing !== handle) continue;
    if (error === undefined) {
      next = withContainer(next, { ...record, releasing: undefined });
      continue;
    }
    steps.push({
      type: "log",
      level: "warn",
      container,
      message: `releasing the unused image failed (it stays mounted): ${error}`,
    });
    next = withContainer(
      next,
      record.mount
        ? { ...record, releasing: undefined }
        : { ...record, releasing: undefined, mount: handle, mountedBy: "start" },
    );
  }
  return { state: next, steps };
}
