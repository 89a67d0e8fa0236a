/**
 * The one cgroup name rule, in common/ because both the configuration (Skiff's root and groups)
 * and the cgroup tree (containers, `cgroups.parent`) check it, and the config is read first.
 */

/**
 * A name is one directory (no "/", never "." or ".."), of the characters
 * a container id ("name:version", versions with "+build") needs, at most NAME_MAX.
 */
const NAME = /^[A-Za-z0-9_][A-Za-z0-9_.:@+-]{0,254}$/;
/** v1 hierarchies hold control files next to child directories; a child named like one would collide. */
const CONTROL_FILE = /^(cgroup|cpu|cpuacct|cpuset|memory|pids|blkio|io|freezer|devices)\./;

/**
 * Why `name` cannot be one cgroup directory below Skiff's root, or undefined when it can. Used for
 * Skiff's root (`cgroup`), groups (`[groups.<name>]`, which the config also keeps free of ":"),
 * container cgroups and each component of `cgroups.parent`.
 */
export function cgroupNameProblem(name: string): string | undefined {
  if (!NAME.test(name)) {
    return "must be a single cgroup name (1..255 letters, digits, _ . : @ + -, starting with a letter, digit or _)";
  }
  if (CONTROL_FILE.test(name)) return "would collide with a cgroup control file";
  return undefined;
}
