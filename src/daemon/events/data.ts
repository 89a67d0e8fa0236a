/**
 * Plain data the daemon's vocabulary (events/types.ts, events/steps.ts) speaks about: what
 * started an instance, with which overrides, an installed package, an instance found at start-up.
 * No behaviour, nothing stateful: every room may import it.
 */
import type { Npk } from "../../npk/npk.js";
import type { ContainerId } from "../../protocol/container.js";

/** What started a container instance. */
export type StartedBy = "request" | "autostart" | "restart" | "reboot" | "adopted" | "restore";

/** A start request's replacements for the manifest's init, arguments and environment. */
export interface StartOverrides {
  init: string | null;
  arguments: string[];
  environment: Record<string, string>;
}

export const NO_OVERRIDES: StartOverrides = { init: null, arguments: [], environment: {} };

/** A package in a repository, checked and ready to serve. */
export interface InstalledPackage {
  repository: string;
  npk: Npk;
  /** File size in bytes, counted against `capacity_size`. */
  size: number;
}

/** An instance a previous daemon left, as the container executor found it (containers/adopt.ts). */
export interface AdoptedInstance {
  container: ContainerId;
  /** Set for a prepared instance (created, waiting for its start). */
  prepared?: boolean;
  pid?: number;
  /** Absolute cgroup path of the instance. */
  cgroupPath: string;
  startedAt: number;
  startedBy: StartedBy;
  overrides: StartOverrides;
  resources: ContainerId[];
}
