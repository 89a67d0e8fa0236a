// The cgroup layer: the only part of Skiff that knows cgroup paths and file formats (docs/cgroups.md).
export { detectLayout, parseMountinfo, type CgroupLayout, type CgroupLayoutKind } from "./layout.js";
export { containerCgroupPath, groupCgroupPath, validateCgroupName } from "./paths.js";
export { CgroupTree, type RemoveOptions } from "./tree.js";
export {
  applyLimits,
  limitsToFiles,
  CgroupLimitError,
  type CgroupLimits,
  type CgroupFile,
} from "./limits.js";
export { limitsFromManifestCgroups } from "./manifest.js";
export { killCgroup, type KillOptions } from "./kill.js";
export { readStats, type CgroupStats } from "./cgroup-stats.js";
export {
  CgroupSupervisor,
  toMemoryNotification,
  type SupervisorConfig,
  type MemoryCounts,
  type CleanupReport,
  type StopReport,
} from "./supervisor.js";
export {
  checkLimits,
  groupLimits,
  groupOfManifest,
  limitReachedMessage,
  UnknownGroupError,
  type LimitReached,
  type RunningCounts,
} from "./groups.js";
export {
  toProcessStatistics,
  type ProcessStatistics,
  type MemoryStatistics,
  type CpuStatistics,
  type PidsStatistics,
  type IoStatistics,
} from "./process-statistics.js";
