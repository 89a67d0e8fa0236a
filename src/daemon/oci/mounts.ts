import { resolveImagePath, resolveWithin } from "../../common/paths.js";
import type { Manifest, Mount } from "../../npk/manifest/index.js";
import type { OciDevice, OciMount } from "./types.js";

/**
 * Where Skiff's init is bind-mounted in every container (inside the /dev tmpfs: the root is
 * read-only). The source is the instance's private copy in its bundle, never the host's binary.
 */
export const SKIFF_INIT_PATH_IN_CONTAINER = "/dev/.skiff/init";
/** Where the per-container console socket is bind-mounted when the container has console access. */
export const SKIFF_CONSOLE_PATH_IN_CONTAINER = "/dev/.skiff/console";

/** What the mount mapping needs to know about the host. */
export interface MountFacts {
  /** Mounted root of each resource container a `resource` mount names, by resource name. */
  resourceRoots: Readonly<Record<string, string>>;
  /** Persist mounts bind `<dataDir>/<name>`. */
  dataDir: string;
  /** Host directory a `sockets` mount binds; required only when the manifest has one. */
  socketDir?: string;
  /** Bind mount sources that do not exist on the host: skipped with a warning, as Northstar does. */
  missingBindSources?: ReadonlySet<string>;
  /** The instance's own copy of skiff-init (see oci/bundle.ts). */
  initHostPath: string;
  consoleSocketHostPath?: string;
}

/** The device nodes of a minimal /dev (OCI linux.devices; runc creates them). */
export const MINIMAL_DEVICES: readonly OciDevice[] = [
  ["null", 1, 3],
  ["zero", 1, 5],
  ["full", 1, 7],
  ["random", 1, 8],
  ["urandom", 1, 9],
  ["tty", 5, 0],
].map(([name, major, minor]) => ({
  type: "c",
  path: `/dev/${name as string}`,
  major: major as number,
  minor: minor as number,
  fileMode: 0o666,
  uid: 0,
  gid: 0,
}));

const DEV_MOUNTS: readonly OciMount[] = [
  {
    destination: "/dev",
    type: "tmpfs",
    source: "tmpfs",
    options: ["nosuid", "strictatime", "mode=755", "size=65536k"],
  },
  {
    destination: "/dev/pts",
    type: "devpts",
    source: "devpts",
    options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"],
  },
  {
    destination: "/dev/shm",
    type: "tmpfs",
    source: "shm",
    options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
  },
];

const PROC_MOUNT = (destination: string): OciMount => ({
  destination,
  type: "proc",
  source: "proc",
  options: ["ro", "nosuid", "nodev", "noexec"],
});

function flagOptions(options: string | undefined): string[] {
  const set = new Set(options?.split(",") ?? []);
  return ["nosuid", "nodev", "noexec"].filter((flag) => set.has(flag));
}

/** Number of path components; parents sort before what is mounted inside them. */
function depth(path: string): number {
  return path.split("/").filter((part) => part !== "").length;
}

/**
 * Maps the manifest mounts plus Skiff's fixed mounts (/dev tmpfs, devpts, shm, the init binary and the
 * console socket) to OCI mounts, ordered so that every mount comes after the mounts it lives in.
 */
export function buildMounts(manifest: Manifest, facts: MountFacts, warnings: string[]): OciMount[] {
  const mounts: OciMount[] = [...DEV_MOUNTS];
  let procMounted = false;
  for (const [target, mount] of Object.entries(manifest.mounts ?? {})) {
    const normalized =
      "/" +
      target
        .split("/")
        .filter((part) => part !== "")
        .join("/");
    if (mount.type === "dev" && normalized === "/dev") continue; // always present
    if (mount.type === "proc" && normalized === "/proc") procMounted = true;
    mounts.push(...mapMount(manifest, normalized, mount, facts, warnings));
  }
  // runc itself needs /proc in the container to start the process (it walks /proc/self/fd).
  if (!procMounted) mounts.push(PROC_MOUNT("/proc"));
  mounts.push({
    destination: SKIFF_INIT_PATH_IN_CONTAINER,
    type: "bind",
    source: facts.initHostPath,
    options: ["bind", "ro", "nosuid", "nodev"],
  });
  if (facts.consoleSocketHostPath !== undefined) {
    mounts.push({
      destination: SKIFF_CONSOLE_PATH_IN_CONTAINER,
      type: "bind",
      source: facts.consoleSocketHostPath,
      options: ["bind", "nosuid", "nodev", "noexec"],
    });
  }
  // Array.prototype.sort is stable: equal depths keep manifest order.
  return mounts.sort((a, b) => depth(a.destination) - depth(b.destination));
}

function mapMount(
  manifest: Manifest,
  target: string,
  mount: Mount,
  facts: MountFacts,
  warnings: string[],
): OciMount[] {
  switch (mount.type) {
    case "bind": {
      if (facts.missingBindSources?.has(mount.host)) {
        warnings.push(
          `mounts.${target}: bind source ${mount.host} does not exist on the host; mount skipped`,
        );
        return [];
      }
      const options = mount.options?.split(",") ?? [];
      const bind = options.includes("rec") ? "rbind" : "bind";
      const access = options.includes("rw") ? "rw" : "ro";
      return [
        {
          destination: target,
          type: "bind",
          source: mount.host,
          options: [bind, access, ...flagOptions(mount.options)],
        },
      ];
    }
    case "persist":
      return [
        {
          destination: target,
          type: "bind",
          source: resolveWithin(facts.dataDir, manifest.name),
          options: ["bind", "rw", "nosuid", "nodev", "noexec"],
        },
      ];
    case "resource": {
      const root = facts.resourceRoots[mount.name];
      if (root === undefined)
        throw new Error(`mounts.${target}: resource container ${mount.name} is not mounted`);
      // Resources are read-only images; Northstar mounts them read-only whatever the options say.
      return [
        {
          destination: target,
          type: "bind",
          source: resolveImagePath(root, mount.dir),
          options: ["bind", "ro", ...flagOptions(mount.options)],
        },
      ];
    }
    case "tmpfs":
      // runc 1.1 replaces `mode=` with the mode of the mount point directory in the image (it
      // chmods the new tmpfs after mounting it), and a mount point the packer created is 0755:
      // a root-owned 0755 tmpfs the container's user cannot write. So the tmpfs belongs to the
      // manifest's uid:gid, the user every process of the container runs as: writable whatever
      // mode the runtime leaves it with.
      return [
        {
          destination: target,
          type: "tmpfs",
          source: "tmpfs",
          options: [
            "nosuid",
            "nodev",
            "noexec",
            `size=${mount.size}`,
            "mode=1777",
            `uid=${manifest.uid}`,
            `gid=${manifest.gid}`,
          ],
        },
      ];
    case "proc":
      return [PROC_MOUNT(target)];
    case "sysfs":
      return [
        { destination: target, type: "sysfs", source: "sysfs", options: ["ro", "nosuid", "nodev", "noexec"] },
      ];
    case "sockets":
      if (facts.socketDir === undefined)
        throw new Error(`mounts.${target}: a sockets mount needs the host socket directory`);
      return [
        {
          destination: target,
          type: "bind",
          source: facts.socketDir,
          options: ["bind", "rw", "nosuid", "nodev", "noexec"],
        },
      ];
    case "dev":
      // A minimal dev tree somewhere other than /dev: a tmpfs with the default device nodes bound in.
      return [
        {
          destination: target,
          type: "tmpfs",
          source: "tmpfs",
          options: ["nosuid", "noexec", "mode=755", "size=64k"],
        },
        ...MINIMAL_DEVICES.map((device) => ({
          destination: `${target}/${device.path.slice("/dev/".length)}`,
          type: "bind",
          source: device.path,
          options: ["bind", "rw", "nosuid", "noexec"],
        })),
      ];
  }
}
