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
  /**
   * Set for a Kubernetes CRI container (docs/cri.md, "Containers"): its package is synthetic
   * (repository `cri`, no NPK file, a manifest derived from the CRI config) and what CRI asks
   * beyond a Northstar manifest is here, beside it: the manifest goes on the wire as it is.
   */
  cri?: CriContainerPart;
}

/** The repository that holds the synthetic packages of CRI containers (no directory, no files). */
export const CRI_REPOSITORY = "cri";

/** CRI `LinuxContainerResources` as a container's cgroup gets them (absent: not limited). */
export interface CriResources {
  cpuPeriod?: number;
  cpuQuota?: number;
  cpuShares?: number;
  memoryLimitBytes?: number;
  cpusetCpus?: string;
  cpusetMems?: string;
}

/** A host path bind-mounted into a CRI container (validated by the CRI side). */
export interface CriMount {
  hostPath: string;
  containerPath: string;
  readonly: boolean;
}

/**
 * What a CRI container needs beyond its manifest. Every path here is absolute and was built or
 * checked by the CRI side (src/cri/containers/): none comes from request text unchecked.
 */
export interface CriContainerPart {
  /** The CRI container id (64 lowercase hex digits). */
  id: string;
  podSandboxId: string;
  /** `<data_dir>/cri/containers/<id>`: record, overlay upper/work, rootfs (mount point), exit.json. */
  dir: string;
  /** The image store's unpacked root: the overlay's read-only lower layer, shared. */
  imageRootfs: string;
  /** The log in CRI's format, inside the pod's log directory; absent: no log file. */
  logPath?: string;
  /** Beside the manifest's: CRI may pass more variables than a manifest may hold. */
  env: Record<string, string>;
  workingDir?: string;
  uid: number;
  gid: number;
  additionalGids: number[];
  readonlyRootfs: boolean;
  /** `resources.oom_score_adj` (-1000..1000): the kubelet's QoS class; absent: the runtime's. */
  oomScoreAdj?: number;
  /** The pod's namespace files to join; absent: the host's. */
  namespaces: { network?: string; ipc?: string; uts?: string };
  /** The pod's cgroup relative to Skiff's cgroup root (`PodSandboxRef.cgroupParent`). */
  cgroupParent: string;
  hostname: string;
  /** Host files bind-mounted read-only at /etc/hosts, /etc/resolv.conf, /etc/hostname (absent: none). */
  etcFiles?: { hosts: string; resolvConf: string; hostname: string };
  mounts: CriMount[];
  resources: CriResources;
  /** The OCI runtime of the pod's runtime handler; absent: the daemon's. */
  runtime?: { path: string; kind: "runc" | "crun" };
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
