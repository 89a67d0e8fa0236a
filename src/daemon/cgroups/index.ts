// The cgroup layer: the only part of Skiff that knows cgroup paths and file formats (docs/cgroups.md).
// What the rest of the daemon uses; the layer's own files and its tests import the modules directly.
export { detectLayout, type CgroupLayout } from "./layout.js";
export { CgroupSupervisor, toMemoryNotification } from "./supervisor.js";
export { type ProcessStatistics } from "./process-statistics.js";
