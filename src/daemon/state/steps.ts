/**
 * Steps are what a transition asks the world to do. The state owner hands them to the
 * executor map (runtime.ts); executors report back through `job` events, never by touching
 * the state.
 */
import type { ContainerId } from "../../protocol/container.js";
import type { ContainerResult, Notification, Response } from "../../protocol/messages.js";
import type { Reply } from "../events/types.js";
import type { MountHandle } from "../mount/index.js";
import type { InstalledPackage } from "../repository/repository.js";

export type Step =
  /** Answers the console request being handled. */
  | { type: "reply"; response: Response }
  /** Answers a request whose answer had to wait for a job. */
  | { type: "reply_to"; reply: Reply; response: Response }
  | { type: "notify"; notification: Notification }
  | { type: "shutdown"; reason: string }
  /** Moves a verified upload to its final name; reports `install_committed`. */
  | { type: "commit_install"; container: ContainerId; pkg: InstalledPackage; tempPath: string; reply: Reply }
  /** Deletes a refused upload. */
  | { type: "discard_upload"; tempPath: string }
  /** Mounts (or unmounts) images in parallel; reports `mounted` with results in request order. */
  | {
      type: "mount_images";
      kind: "mount" | "umount";
      jobs: { container: ContainerId; pkg: InstalledPackage; handle?: MountHandle }[];
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
    };

export interface Transition<S> {
  state: S;
  steps: Step[];
}
