/**
 * What a CRI container needs of its pod sandbox: the contract between the pod store
 * (src/cri/pods/, the one owner of pod records) and the containers that run in a pod
 * (src/cri/containers/ and the daemon's start path). Plain data, no behaviour: both sides import
 * it, neither imports the other for it.
 */

/** CRI's `PodSandboxMetadata`. */
export interface PodSandboxMetadata {
  name: string;
  namespace: string;
  uid: string;
  attempt: number;
}

/** A pod sandbox as the containers in it see it. */
export interface PodSandboxRef {
  /** 64 lowercase hex digits, chosen by Skiff. */
  id: string;
  metadata: PodSandboxMetadata;
  /**
   * Namespace files (bind-mounted `/proc/<pid>/ns/*` of a namespace held open without a process)
   * that every container of the pod joins. Absent: the container uses the host's namespace
   * (CRI `NamespaceMode.NODE`, e.g. `hostNetwork: true`).
   */
  namespaces: { network?: string; ipc?: string; uts?: string };
  /**
   * The pod's cgroup, relative to Skiff's cgroup root in every hierarchy (e.g. `cri/<id>`): the
   * pod's limits are written there and each container's cgroup is created beneath it.
   */
  cgroupParent: string;
  hostname: string;
  /** Host files bind-mounted read-only into each container at /etc/hosts, /etc/resolv.conf and /etc/hostname. */
  etcFiles: { hosts: string; resolvConf: string; hostname: string };
  /** `PodSandboxConfig.log_directory`: container logs go to `<logDirectory>/<ContainerConfig.log_path>`. */
  logDirectory: string;
  /** The runtime handler (RuntimeClass) the pod's containers run under; "" is the default. */
  runtimeHandler: string;
  /** False once `StopPodSandbox` began: no container may be created or started in it. */
  ready: boolean;
}

/** How the containers side finds a pod. */
export interface PodSandboxLookup {
  /** The pod `id` names: its full id or a unique prefix (crictl's short ids). */
  sandbox(id: string): PodSandboxRef | undefined;
}
