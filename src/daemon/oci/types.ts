/**
 * The parts of the OCI runtime-spec 1.0.2 config.json that Skiff fills in (runc 1.1.5 reads these).
 * 64-bit values that may exceed Number.MAX_SAFE_INTEGER (rlimits, seccomp argument values) are bigint;
 * write the spec with serializeOciSpec, not JSON.stringify.
 */
export interface OciSpec {
  ociVersion: string;
  process: OciProcess;
  root: { path: string; readonly: boolean };
  hostname?: string;
  mounts: OciMount[];
  linux: OciLinux;
}

export interface OciProcess {
  terminal: boolean;
  user: { uid: number; gid: number; additionalGids?: number[] };
  args: string[];
  env: string[];
  cwd: string;
  capabilities: OciCapabilities;
  rlimits: OciRlimit[];
  noNewPrivileges: boolean;
  /** -1000..1000; set for CRI containers (the kubelet's QoS class). */
  oomScoreAdj?: number;
  /** runtime-spec 1.2; runc 1.1.5 ignores it (buildOciSpec warns). */
  scheduler?: OciScheduler;
  selinuxLabel?: string;
}

export interface OciCapabilities {
  bounding: string[];
  effective: string[];
  inheritable: string[];
  permitted: string[];
  ambient: string[];
}

export interface OciRlimit {
  type: string;
  hard: bigint;
  soft: bigint;
}

export interface OciScheduler {
  policy: "SCHED_OTHER" | "SCHED_FIFO" | "SCHED_RR" | "SCHED_BATCH" | "SCHED_IDLE" | "SCHED_DEADLINE";
  nice?: number;
  priority?: number;
}

export interface OciMount {
  destination: string;
  type?: string;
  source?: string;
  options?: string[];
}

export interface OciNamespace {
  type: "pid" | "network" | "mount" | "ipc" | "uts" | "user" | "cgroup";
  path?: string;
}

export interface OciDevice {
  type: "c" | "b" | "u" | "p";
  path: string;
  major: number;
  minor: number;
  fileMode: number;
  uid: number;
  gid: number;
}

export interface OciDeviceRule {
  allow: boolean;
  type?: "a" | "c" | "b";
  major?: number;
  minor?: number;
  access?: string;
}

export interface OciLinux {
  namespaces: OciNamespace[];
  devices: OciDevice[];
  cgroupsPath: string;
  resources: OciResources;
  seccomp?: OciSeccomp;
  maskedPaths: string[];
  readonlyPaths: string[];
  mountLabel?: string;
}

export interface OciResources {
  devices: OciDeviceRule[];
  memory?: {
    limit?: number;
    reservation?: number;
    swap?: number;
    kernelTCP?: number;
    swappiness?: number;
  };
  cpu?: {
    shares?: number;
    quota?: number;
    period?: number;
    realtimeRuntime?: number;
    realtimePeriod?: number;
    cpus?: string;
    mems?: string;
  };
  blockIO?: {
    weight?: number;
    leafWeight?: number;
    weightDevice?: { major: number; minor: number; weight?: number; leafWeight?: number }[];
    throttleReadBpsDevice?: OciThrottleDevice[];
    throttleWriteBpsDevice?: OciThrottleDevice[];
    throttleReadIOPSDevice?: OciThrottleDevice[];
    throttleWriteIOPSDevice?: OciThrottleDevice[];
  };
  pids?: { limit: number };
}

export interface OciThrottleDevice {
  major: number;
  minor: number;
  rate: number;
}

export interface OciSeccomp {
  defaultAction: string;
  architectures: string[];
  syscalls: OciSyscallRule[];
}

export interface OciSyscallRule {
  names: string[];
  action: "SCMP_ACT_ALLOW" | "SCMP_ACT_ERRNO";
  errnoRet?: number;
  args?: OciSyscallArg[];
}

export interface OciSyscallArg {
  index: number;
  value: bigint;
  valueTwo?: bigint;
  op: "SCMP_CMP_EQ" | "SCMP_CMP_MASKED_EQ";
}
