/**
 * Steps are what a transition asks the world to do, grouped by who carries them out: the
 * runtime itself (replies, notifications, shutdown), the package executor
 * (repository/executor.ts), the container executor (containers/executor.ts) and the power
 * executor (power/executor.ts). The state owner hands them to runtime.ts, which routes each
 * group with an exhaustive switch; executors report back through events, never by touching
 * the state.
 */
import type { ContainerId } from "../../protocol/container.js";
import type { Notification, ProxyFraming, Response, WakeSource } from "../../protocol/messages.js";
import type { MountImagesStep, PowerEvent, Reply } from "./types.js";
import type { MountHandle } from "../mount/index.js";
import type { InstalledPackage, StartedBy, StartOverrides } from "./data.js";
import type { ShutdownReason } from "../errors.js";
import type { InspectView } from "../responses.js";

/** Every step; a new one goes into exactly one of the groups below. */
export type Step = RuntimeStep | RepositoryStep | ContainerStep | PowerStep;

/** Carried out by runtime.ts. */
export type RuntimeStep =
  /** Answers the console request being handled. */
  | { type: "reply"; response: Response }
  /** Answers a request whose answer had to wait for a job. */
  | { type: "reply_to"; reply: Reply; response: Response }
  | { type: "notify"; notification: Notification }
  | { type: "shutdown"; reason: ShutdownReason };

/** Carried out by the package executor (repository/executor.ts). */
export type RepositoryStep =
  /** Moves a verified upload to its final name; reports `install_committed`. */
  | { type: "commit_install"; container: ContainerId; pkg: InstalledPackage; tempPath: string; reply: Reply }
  /** Deletes a refused upload. */
  | { type: "discard_upload"; tempPath: string }
  /** Mounts (or unmounts) images in parallel; reports `mounted` with results in request order. */
  | MountImagesStep
  /**
   * The mount cache releases these unused images (state/mount-cache.ts): once the container
   * cleanups in flight are done, unmounts each; reports `images_released`. Answers no one.
   */
  | { type: "release_images"; images: { container: ContainerId; handle: MountHandle }[] }
  /** Unmounts if needed, deletes the package file and, with `wipe`, its persistent data. */
  | {
      type: "uninstall_package";
      container: ContainerId;
      pkg: InstalledPackage;
      mount?: MountHandle;
      wipe: boolean;
      reply: Reply;
    };

/** Carried out by the container executor (containers/executor.ts). */
export type ContainerStep =
  /**
   * Ends the prepared instances of `containers` without an exit (nothing of the app ran) and
   * cleans them up, then reports `prepared_discarded`, which carries `umount` on: the state
   * issues the umount of their images once they are gone.
   */
  | { type: "discard_prepared"; containers: ContainerId[]; umount: MountImagesStep }
  /** Mounts what is not mounted, writes the bundle, starts the monitor and the container. */
  | {
      type: "start_container";
      container: ContainerId;
      pkg: InstalledPackage;
      mount?: MountHandle;
      resources: { container: ContainerId; pkg: InstalledPackage; mount?: MountHandle }[];
      overrides: StartOverrides;
      startedBy: StartedBy;
      /** Create only: the instance waits on the exec fifo (`prepare`). */
      prepareOnly: boolean;
      /**
       * The container has a prepared instance (lifecycle phase `preparing`/`prepared`): this
       * start `use`s it, or `replace`s it (overrides cannot use it, its process is fixed at
       * create; a restore's process comes from the image). Absent: a new instance.
       */
      prepared?: "use" | "replace";
      /** `runtime restore` from the container's checkpoint image instead of create + start. */
      restore?: boolean;
    }
  /** `runtime checkpoint` of the running instance; reports `container_checkpointed` or `..._failed`. */
  | { type: "checkpoint_container"; container: ContainerId; reply: Reply }
  /** Removes the container's checkpoint image (restored from, or uninstalled). */
  | { type: "discard_checkpoint"; container: ContainerId }
  /** Signals every process of the instance (a frozen one is thawed beside it: `thaw_killed`). */
  | { type: "kill_container"; container: ContainerId; signal: number; reply?: Reply }
  /** SIGTERM now, SIGKILL after `graceMs` unless the container has ended. */
  | { type: "stop_container"; container: ContainerId; graceMs: number }
  /** After an exit: the monitor connection, the bundle and the cgroup go. */
  | { type: "cleanup_container"; container: ContainerId }
  | { type: "schedule_restart"; container: ContainerId; delayMs: number }
  /** Answers an inspect of a running container with its cgroup statistics (responses.ts). */
  | { type: "reply_inspect"; container: ContainerId; view: InspectView; reply: Reply }
  | { type: "read_logs"; container: ContainerId; lines?: number; offset?: number; reply: Reply }
  | { type: "log"; level: "info" | "warn" | "error"; container: ContainerId; message: string };

/** Carried out by the power executor (power/executor.ts). */
export type PowerStep =
  /** The instance runs: its cgroup and init pid are what freezes, thaws and proxies act on. */
  | { type: "attach_power"; container: ContainerId; cgroupPath: string; pid: number }
  /** The instance ended: its timers, watchers and channels go, a freeze in flight is aborted. */
  | { type: "release_power"; container: ContainerId }
  /** A kill of a frozen container: abort a freeze in flight and thaw (v1 needs it for SIGKILL). */
  | { type: "thaw_killed"; container: ContainerId }
  | { type: "freeze"; container: ContainerId; purpose: "suspend" | "pause" }
  | { type: "thaw"; container: ContainerId; purpose: "wake" | "resume" | "abort" }
  /** Posts `event` for the container after `delayMs`; a timer with the same key is replaced. */
  | { type: "power_timer"; container: ContainerId; key: string; delayMs: number; event: PowerEvent }
  | { type: "cancel_power_timer"; container: ContainerId; key: string }
  | { type: "watch_wake_source"; container: ContainerId; name: string; source: WakeSource }
  | { type: "unwatch_wake_source"; container: ContainerId; name: string }
  | {
      type: "open_proxy";
      container: ContainerId;
      name: string;
      listen: string;
      target: string;
      framing: ProxyFraming;
      reply?: Reply;
    };

export interface Transition<S> {
  state: S;
  steps: Step[];
}
