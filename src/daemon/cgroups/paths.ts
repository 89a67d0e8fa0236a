// Pure path rules for Skiff's cgroup subtree. Cgroup paths are absolute from each hierarchy's mount root
// (e.g. "/skiff/hello"), never relative to the cgroup Skiff itself runs in.
import { resolveWithin } from "../../common/paths.js";
import { cgroupNameProblem } from "../../common/cgroup-name.js";
import type { CgroupLayout } from "./layout.js";

/** Throws unless `name` is usable as one cgroup directory name. `field` names the config/manifest field. */
export function validateCgroupName(name: string, field: string): void {
  const problem = cgroupNameProblem(name);
  if (problem !== undefined) throw new Error(`${field}: "${name}" ${problem}`);
}

/** "/<root>/<container>" or, for a process group, "/<root>/<group>/<container>". */
export function containerCgroupPath(root: string, container: string, group?: string): string {
  validateCgroupName(root, "cgroup");
  validateCgroupName(container, "container");
  if (group === undefined) return `/${root}/${container}`;
  validateCgroupName(group, "group");
  return `/${root}/${group}/${container}`;
}

/**
 * "/<root>/<parent>/<container>": Northstar's `cgroups.parent` as a path relative to Skiff's
 * cgroup (a leading or trailing `/` is dropped). Each component must be a cgroup name (no `.`,
 * `..`, empty or control-file-like component: resolveWithin refuses escapes).
 */
export function parentCgroupPath(root: string, parent: string, container: string): string {
  validateCgroupName(root, "cgroup");
  validateCgroupName(container, "container");
  const relative = parent.replace(/^\/+/, "").replace(/\/+$/, "");
  if (relative === "") return `/${root}/${container}`;
  for (const component of relative.split("/")) validateCgroupName(component, "cgroups.parent");
  return resolveWithin(`/${root}`, relative, container);
}

export function groupCgroupPath(root: string, group: string): string {
  validateCgroupName(root, "cgroup");
  validateCgroupName(group, "group");
  return `/${root}/${group}`;
}

/** Joins a hierarchy mount point and an absolute cgroup path. */
export function hierarchyDir(mount: string, cgroupPath: string): string {
  if (!cgroupPath.startsWith("/") || cgroupPath.split("/").some((part) => part === ".." || part === ".")) {
    throw new Error(`cgroup path "${cgroupPath}" must be absolute and must not contain . or ..`);
  }
  return cgroupPath === "/" ? mount : `${mount}${cgroupPath}`;
}

/** Directory of `cgroupPath` in the hierarchy carrying `controller`, or undefined if the host lacks it. */
export function controllerDir(
  layout: CgroupLayout,
  controller: string,
  cgroupPath: string,
): string | undefined {
  const mount = layout.controllers.get(controller)?.mount;
  return mount === undefined ? undefined : hierarchyDir(mount, cgroupPath);
}

/** Directory of `cgroupPath` on the cgroup2 hierarchy, or undefined on a pure v1 host. */
export function unifiedDir(layout: CgroupLayout, cgroupPath: string): string | undefined {
  return layout.unified === undefined ? undefined : hierarchyDir(layout.unified, cgroupPath);
}

/** Directories of `cgroupPath` on every hierarchy (the set runc creates for a container). */
export function allDirs(layout: CgroupLayout, cgroupPath: string): string[] {
  return layout.hierarchies.map((mount) => hierarchyDir(mount, cgroupPath));
}
