/**
 * Steps are what a transition asks the world to do. The state owner hands them to the
 * executor map (runtime.ts); executors report back through `job` events, never by touching
 * the state.
 */
import type { ContainerId } from "../../protocol/container.js";
import type {
  ContainerResult,
  Notification,
  ProxyFraming,
  Response,
  WakeSource,
} from "../../protocol/messages.js";
import type { ContainerEvent, Reply } from "../events/types.js";
import type { MountHandle } from "../mount/index.js";
import type { InstalledPackage } from "../repository/repository.js";
import type { StartedBy, StartOverrides } from "./model.js";
import type { ShutdownReason } from "../errors.js";
import type { InspectView } from "../responses.js";

export type Step =
  /** Answers the console request being handled. */
  | { type: "reply"; response: Response }
  /** Answers a request whose answer had to wait for a job. */
  | { type: "reply_to"; reply: Reply; response: Response }
  | { type: "notify"; notification: Notification }
  | { type: "shutdown"; reason: ShutdownReason }
  /** Moves a verified upload to its final name; reports `install_committed`. */
  | { type: "commit_install"; container: ContainerId; pkg: InstalledPackage; tempPath: string; reply: Reply }
  /** Deletes a refused upload. */
  | { type: "discard_upload"; tempPath: string }
  /** Mounts (or unmounts) images in parallel; reports `mounted` with results in request order. */
  | {
      type: "mount_images";
      kind: "mount" | "umount";
      /** `discard`: end the container's prepared instance first (umount). */
      jobs: { container: ContainerId; pkg: InstalledPackage; handle?: MountHandle; discard?: boolean }[];
      immediate: (ContainerResult | undefined)[];
      reply: Reply;
    }
  /** Unmounts if needed, deletes the package file and, with `wipe`, its persistent data. */
  | {
      type: "uninstall_package";
      container: ContainerId;
      pkg: InstalledPackage;
      mount?: MountHandle;
      wipe: boolean;
      reply: Reply;
    }
  | ContainerStep;

export type ContainerStep =
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
      /** Overrides cannot use the prepared instance (its process is fixed at create): replace it. */
      cold: boolean;
      /** `runtime restore` from the container's checkpoint image instead of create + start. */
      restore?: boolean;
    }
  /** `runtime checkpoint` of the running instance; reports `container_checkpointed` or `..._failed`. */
  | { type: "checkpoint_container"; container: ContainerId; reply: Reply }
  /** Removes the container's checkpoint image (restored from, or uninstalled). */
  | { type: "discard_checkpoint"; container: ContainerId }
  /** `thaw`: the freezer holds the container, so it is thawed after the signal (v1 needs it for SIGKILL). */
  | { type: "kill_container"; container: ContainerId; signal: number; thaw: boolean; reply?: Reply }
  | { type: "freeze"; container: ContainerId; purpose: "suspend" | "pause" }
  | { type: "thaw"; container: ContainerId; purpose: "wake" | "resume" | "abort" }
  /** Posts `event` for the container after `delayMs`; a timer with the same key is replaced. */
  | { type: "power_timer"; container: ContainerId; key: string; delayMs: number; event: ContainerEvent }
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
    }
  /** SIGTERM now, SIGKILL after `graceMs` unless the container has ended. */
  | { type: "stop_container"; container: ContainerId; graceMs: number }
  /** After an exit: the monitor connection, the bundle and the cgroup go. */
  | { type: "cleanup_container"; container: ContainerId }
  | { type: "schedule_restart"; container: ContainerId; delayMs: number }
  /** Answers an inspect of a running container with its cgroup statistics (responses.ts). */
  | { type: "reply_inspect"; container: ContainerId; view: InspectView; reply: Reply }
  | { type: "read_logs"; container: ContainerId; lines?: number; offset?: number; reply: Reply }
  | { type: "log"; level: "info" | "warn" | "error"; container: ContainerId; message: string };

export interface Transition<S> {
  state: S;
  steps: Step[];
}
