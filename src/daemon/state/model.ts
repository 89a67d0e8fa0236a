/**
 * The runtime state: what the daemon knows about repositories and containers. Only the state
 * owner (state/owner.ts) replaces it, one event at a time; transitions are pure functions.
 */
import type { ContainerId } from "../../protocol/container.js";
import type { PowerState, RepositoryId, WakeSource } from "../../protocol/messages.js";
import type { MountHandle } from "../mount/index.js";
import { DEFAULT_MOUNT_CACHE_SIZE, type DaemonConfig } from "../config/schema.js";
import type { InstalledPackage, StartedBy, StartOverrides } from "../events/data.js";
import type { Reply } from "../events/types.js";
import type { Phase } from "./lifecycle.js";
import { nameOf } from "../../protocol/container.js";
import { groupOfManifest } from "../cgroups/groups.js";
import { PersistentMap } from "./persistent-map.js";

/** An operation in flight on a container; others wait for it to finish (or are refused). */
export type BusyWith = "install" | "mount" | "umount" | "uninstall";

/** A running (or starting, or stopping) instance of a container. */
export interface ProcessRecord {
  /**
   * Where the instance is in its lifecycle (state/lifecycle.ts: the allowed moves and guards).
   * `preparing`/`prepared`: created by the runtime, init waiting on the exec fifo (docs/executor.md); a start of a prepared instance only opens the fifo.
   */
  phase: Phase;
  /** Started by `restore` from the container's checkpoint image (state/checkpoint.ts). */
  restoring?: boolean;
  /** The container's init pid on the host, once known. */
  pid?: number;
  /** Epoch milliseconds when init started. */
  startedAt?: number;
  startedBy: StartedBy;
  overrides: StartOverrides;
  /** Resource containers whose images this instance uses. */
  resources: ContainerId[];
  /** The `start` request waiting for the instance to run (absent for restarts and autostart). */
  startReply?: Reply;
  /** `stop` requests waiting for the end. */
  stopReplies: Reply[];
  /**
   * A kill, stop or discard asked for the end: the exit is final (not restarted by the restart
   * policy) and power requests are refused. Orthogonal to `phase` (state/lifecycle.ts: a kill
   * does not change the phase).
   */
  stopRequested: boolean;
  /** Freezer, wake locks, wake sources and proxy counters of this instance (state/power.ts). */
  power: PowerRecord;
}

/** A suspend request waiting for its answer (or, without `reply`, an idle suspend). */
export interface PendingSuspend {
  reply?: Reply;
  maxSleepMs?: number;
}

export interface PowerRecord {
  state: PowerState;
  /** A freezer operation in flight, and why. */
  busy?: "suspend-freeze" | "pause-freeze" | "wake-thaw" | "resume-thaw";
  /** Increases with every asleep/awake notification. */
  sequence: number;
  /** A wake lock was taken while a suspend's freeze was in progress. */
  lockedDuringFreeze: boolean;
  locks: readonly WakeLock[];
  /** In registration order (resume reasons are listed in this order). */
  sources: readonly { name: string; source: WakeSource }[];
  counters: Readonly<Record<string, number>>;
  lastSuspend: { suspend_time: number; resume_reason: string } | null;
  /** Suspend requests in arrival order; the first is the one being served. */
  suspends: readonly PendingSuspend[];
  /** Epoch ms the current sleep began. */
  asleepSince?: number;
  /** Sources that fired during the current sleep. */
  fired: readonly string[];
  /** pause/resume requests waiting for their freezer operation. */
  waiting: readonly Reply[];
  /** Epoch ms of the last proxy traffic or lock change (idle suspend). */
  lastActivity: number;
}

export interface WakeLock {
  name: string;
  /** "host", or "session:<id>" for a lock taken through a container's console connection. */
  holder: string;
  expiresAt?: number;
}

export function initialPower(now: number): PowerRecord {
  return {
    state: "awake",
    sequence: 0,
    lockedDuringFreeze: false,
    locks: [],
    sources: [],
    counters: {},
    lastSuspend: null,
    suspends: [],
    fired: [],
    waiting: [],
    lastActivity: now,
  };
}

export interface ContainerRecord {
  id: ContainerId;
  pkg: InstalledPackage;
  /** Present while the package's image is mounted (and not being released). */
  mount?: MountHandle;
  /**
   * Who mounted the image: a start (`"start"`, the mount cache may release it once unused,
   * state/mount-cache.ts) or a `mount` request (`"request"`, kept until `umount`). Absent with
   * `mount`: mounted at daemon start (`mount_on_start`, or left by a previous daemon), kept.
   */
  mountedBy?: "start" | "request";
  /** Epoch ms the last instance that used the image ended (the mount cache's LRU order). */
  idleSince?: number;
  /** The mount cache is unmounting this image; `mount` is already absent (state/mount-cache.ts). */
  releasing?: MountHandle;
  busy?: BusyWith;
  process?: ProcessRecord;
  /** An uninstall waiting for the prepared instance it discards to end. */
  uninstallAfterExit?: { wipe: boolean; reply: Reply };
  /** Consecutive restarts by the restart policy since the last start that was not one. */
  restarts?: number;
  /** A checkpoint image waits for `restore` (state/checkpoint.ts). */
  checkpoint?: CheckpointRecord;
}

/** What a checkpoint keeps for its restore: the instance's start overrides, and when it was taken. */
export interface CheckpointRecord {
  overrides: StartOverrides;
  /** Epoch ms. */
  at: number;
}

export interface RepositoryInfo {
  id: RepositoryId;
  keyed: boolean;
  capacityNum?: number;
  capacitySize?: number;
}

/** The container limits: daemon-wide and per process group. */
export type ContainerLimits = Pick<DaemonConfig, "maxContainers" | "groups">;

export interface RuntimeState {
  readonly limits: ContainerLimits;
  readonly repositories: ReadonlyMap<RepositoryId, RepositoryInfo>;
  /**
   * Installed containers; a record busy with "install" is reserved, not yet visible. Persistent:
   * a transition's update copies a path, not the map (state/persistent-map.ts).
   */
  readonly containers: PersistentMap<ContainerId, ContainerRecord>;
  /** Derived from `containers`; only withContainer and withoutContainer change it. */
  readonly instances: InstanceCounts;
  /** Set once shutdown has begun; requests that change things are refused from then on. */
  readonly shuttingDown: boolean;
  /** Images a start mounted that stay mounted while unused (`mount_cache_size`). */
  readonly mountCacheSize: number;
}

/**
 * The instances (records with a process: starting, running, prepared, stopping...) counted
 * daemon-wide, per container name and per process group: what a start checks (one instance per
 * name, the limits), answered in O(1) instead of a scan of every container (state/containers.ts).
 *
 * INVARIANTS: equal at all times to the counts over `containers`; withContainer and
 * withoutContainer, the only functions that change `containers`, keep it so
 * (test/unit/state/persistent-map.test.ts compares it with a recount).
 */
export interface InstanceCounts {
  readonly total: number;
  readonly byName: PersistentMap<string, number>;
  /** Configured groups are few: this map is copied on a change. */
  readonly byGroup: ReadonlyMap<string, number>;
}

const NO_INSTANCES: InstanceCounts = { total: 0, byName: PersistentMap.empty(), byGroup: new Map() };

/**
 * The configured group an instance of `record` counts in. A manifest naming an unknown group
 * cannot start (the start refuses it, state/containers.ts); should one run anyway (adopted after
 * a configuration change), it counts daemon-wide only.
 */
function groupOf(record: ContainerRecord, limits: ContainerLimits): string | undefined {
  try {
    return groupOfManifest(record.pkg.npk.manifest, limits.groups)?.name;
  } catch {
    return undefined;
  }
}

/** `counts` with one instance of `record` added (`by` 1) or removed (`by` -1). */
function counted(
  counts: InstanceCounts,
  record: ContainerRecord,
  by: 1 | -1,
  limits: ContainerLimits,
): InstanceCounts {
  const name = nameOf(record.id);
  const perName = (counts.byName.get(name) ?? 0) + by;
  const group = groupOf(record, limits);
  let byGroup = counts.byGroup;
  if (group !== undefined) {
    const copy = new Map(byGroup);
    const inGroup = (copy.get(group) ?? 0) + by;
    if (inGroup > 0) copy.set(group, inGroup);
    else copy.delete(group);
    byGroup = copy;
  }
  return {
    total: counts.total + by,
    byName: perName > 0 ? counts.byName.set(name, perName) : counts.byName.delete(name),
    byGroup,
  };
}

/** `counts` after `before` (absent: a new record) became `after` (absent: removed). */
function recount(
  counts: InstanceCounts,
  before: ContainerRecord | undefined,
  after: ContainerRecord | undefined,
  limits: ContainerLimits,
): InstanceCounts {
  // The counts depend on the process's presence and the package (name, group) only.
  const wasCounted = before?.process !== undefined;
  const isCounted = after?.process !== undefined;
  if (wasCounted === isCounted && (!isCounted || before?.pkg === after?.pkg)) return counts;
  let next = counts;
  if (before?.process) next = counted(next, before, -1, limits);
  if (after?.process) next = counted(next, after, 1, limits);
  return next;
}

const NO_LIMITS: ContainerLimits = { maxContainers: 16384, groups: [] };

export function initialState(
  repositories: readonly RepositoryInfo[],
  installed: readonly ContainerRecord[] = [],
  limits: ContainerLimits = NO_LIMITS,
  mountCacheSize: number = DEFAULT_MOUNT_CACHE_SIZE,
): RuntimeState {
  let state: RuntimeState = {
    mountCacheSize,
    limits,
    repositories: new Map([...repositories].sort((a, b) => a.id.localeCompare(b.id)).map((r) => [r.id, r])),
    containers: PersistentMap.empty(),
    instances: NO_INSTANCES,
    shuttingDown: false,
  };
  for (const record of installed) state = withContainer(state, record);
  return state;
}

/** Containers visible to clients (installed, not merely reserved). */
export function visibleContainers(state: RuntimeState): ContainerRecord[] {
  return [...state.containers.values()].filter((c) => c.busy !== "install");
}

export function withContainer(state: RuntimeState, record: ContainerRecord): RuntimeState {
  const before = state.containers.get(record.id);
  return {
    ...state,
    containers: state.containers.set(record.id, record),
    instances: recount(state.instances, before, record, state.limits),
  };
}

export function withoutContainer(state: RuntimeState, id: ContainerId): RuntimeState {
  const before = state.containers.get(id);
  if (!before) return state;
  return {
    ...state,
    containers: state.containers.delete(id),
    instances: recount(state.instances, before, undefined, state.limits),
  };
}

/** Instances of other containers with `record`'s name (Northstar: one instance per name). */
export function otherInstancesOfName(state: RuntimeState, record: ContainerRecord): number {
  return (state.instances.byName.get(nameOf(record.id)) ?? 0) - (record.process ? 1 : 0);
}

export function repositoryUsage(
  state: RuntimeState,
  repository: RepositoryId,
): { count: number; bytes: number } {
  let count = 0;
  let bytes = 0;
  for (const c of state.containers.values()) {
    if (c.pkg.repository !== repository) continue;
    count++;
    bytes += c.pkg.size;
  }
  return { count, bytes };
}
