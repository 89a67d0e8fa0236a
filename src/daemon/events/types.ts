/**
 * Every event the daemon's loop carries. Producers (console sessions, monitors, cgroup
 * watchers, timers, signal handlers, finished jobs) create them; the state owner consumes them.
 */
import type { ContainerId } from "../../protocol/container.js";
import type {
  ContainerResult,
  ExitStatus,
  MemoryNotification,
  Request,
  Response,
  WireError,
} from "../../protocol/messages.js";
import type { MountHandle } from "../mount/index.js";
import type { AdoptedInstance, InstalledPackage } from "./data.js";
import type { ShutdownReason } from "../errors.js";

/** Who sent a console request: a host client, or a container through its own console. */
export type Peer =
  | { kind: "extern"; address: string }
  /** `session` identifies the console connection (wake locks it takes are released when it closes). */
  | { kind: "container"; container: ContainerId; session?: number };

export type Reply = (response: Response) => void;

/** What happened to a container: its instance (InstanceEvent) or its power work (PowerEvent). */
export type ContainerEvent = InstanceEvent | PowerEvent;

/** Reported by the container executor: from monitors, restart timers and cgroup watchers. */
export type InstanceEvent =
  /** The instance ended (reported by its monitor, or by the daemon when the monitor died). */
  /** `runtimeError`: the runtime's own error text (bounded by the monitor) when its create failed. */
  | { type: "exit"; status: ExitStatus; instance?: string; runtimeError?: string }
  /** The restart policy's backoff has passed. */
  | { type: "restart_due" }
  | { type: "cgroup_memory"; memory: MemoryNotification };

/** Reported by the power executor (freezer, timers, wake sources, proxies) and console sessions. */
export type PowerEvent =
  /** The freezer answered a freeze (error: it did not complete and was undone). */
  | { type: "freeze_done"; error?: string }
  | { type: "thaw_done" }
  /** A wake source fired (or the maximum sleep passed: RESUME_REASON_TIMEOUT). */
  | { type: "wake"; source: string }
  | { type: "lock_expired"; name: string }
  | { type: "proxy_messages"; channel: string; count: number }
  /** Counted messages a proxy channel could not hand to the container (its connection ended first). */
  | { type: "proxy_dropped"; channel: string; count: number }
  /** A proxy channel opened (or failed to); `reply` answers its request. */
  | { type: "proxy_opened"; channel: string; error?: string; reply?: Reply }
  /** A connection on the container's own console closed: locks it held are released. */
  | { type: "console_closed"; holder: string }
  /** Time to check whether an idle container should be suspended. */
  | { type: "idle_check" };

/**
 * The step that mounts or unmounts images (a `RepositoryStep`, declared here because
 * `prepared_discarded` carries it on). Mounts or unmounts images. An umount of an image whose container has a prepared instance runs
 * after `discard_prepared` ended that instance; a job whose discard failed carries the failure
 * (`refused`) and is answered with it, its image left mounted.
 */
export interface MountImagesStep {
  type: "mount_images";
  kind: "mount" | "umount";
  jobs: { container: ContainerId; pkg: InstalledPackage; handle?: MountHandle; refused?: WireError }[];
  immediate: (ContainerResult | undefined)[];
  reply: Reply;
}

/** A finished job: the executor's report of a step that took time. */
export type JobResult = RepositoryJob | ContainerJob;

/** Reported by the package executor and the install upload. */
export type RepositoryJob =
  | { type: "upload_received"; pkg: InstalledPackage; tempPath: string; reply: Reply }
  | {
      type: "install_committed";
      container: ContainerId;
      pkg?: InstalledPackage;
      error?: string;
      reply: Reply;
    }
  | {
      type: "mounted";
      kind: "mount" | "umount";
      results: { container: ContainerId; handle?: MountHandle; error?: WireError }[];
      /** Results for containers that needed no job (unknown, already in that state), by position. */
      immediate: (ContainerResult | undefined)[];
      reply: Reply;
    }
  | { type: "uninstalled"; container: ContainerId; error?: string; reply: Reply }
  /** The CRI side created a container: its record, with a synthetic package (`pkg.cri`), joins the state. */
  | { type: "cri_container_added"; container: ContainerId; pkg: InstalledPackage; reply: Reply }
  /** The kubelet starts a CRI container (a console `start` of one is refused). */
  | { type: "cri_start_requested"; container: ContainerId; reply: Reply }
  /** The CRI side removes a container that does not run: its record leaves the state. */
  | { type: "cri_container_removed"; container: ContainerId; reply: Reply }
  /** `release_images` ended: each image unmounted, or `error` (then it is still mounted). */
  | {
      type: "images_released";
      results: { container: ContainerId; handle: MountHandle; error?: string }[];
    };

/** Reported by the container executor, and by the runtime at daemon start (autostart, prepare). */
export type ContainerJob =
  | {
      type: "container_started";
      container: ContainerId;
      pid: number;
      startedAt: number;
      /** The instance's cgroup (the power executor freezes it). */
      cgroupPath: string;
    }
  /** A start mounted images (its own, resources); they stay mounted whatever becomes of the start. */
  | { type: "images_mounted"; mounted: { container: ContainerId; handle: MountHandle }[] }
  /**
   * `discard_prepared` ended these prepared instances (`error`: this one could not be); `umount`
   * is the step to issue next.
   */
  | {
      type: "prepared_discarded";
      results: { container: ContainerId; error?: WireError }[];
      umount: MountImagesStep;
    }
  /** Daemon start: instances a previous daemon left (containers/adopt.ts). */
  | { type: "adopted"; instances: AdoptedInstance[] }
  /** The runtime created the container; its init waits for the start. */
  | { type: "container_prepared"; container: ContainerId; pid: number }
  /** Daemon start: a container whose manifest says `prepare: true` gets its instance. */
  | { type: "prepare_due"; container: ContainerId }
  /** Daemon start: an autostart container is due. */
  | { type: "autostart"; container: ContainerId }
  /** The checkpoint image is written and the instance has ended (its exit is not one). */
  | { type: "container_checkpointed"; container: ContainerId; reply: Reply }
  /** The checkpoint failed; the instance runs on (or its exit follows as usual). */
  | { type: "container_checkpoint_failed"; container: ContainerId; error: WireError; reply: Reply }
  | {
      type: "container_start_failed";
      container: ContainerId;
      error: string;
      /** Set when the executor is degraded (the start was refused without trying). */
      problems?: string[];
    };

export type DaemonEvent =
  | { kind: "console_request"; peer: Peer; request: Request; reply: Reply }
  | { kind: "shutdown"; reason: ShutdownReason }
  | { kind: "container"; container: ContainerId; event: ContainerEvent }
  | { kind: "job"; result: JobResult };
