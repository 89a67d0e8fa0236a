// Builds fs.img from a root directory: squashfs with mksquashfs (mount points added as
// pseudo-file directories, so the root directory is never modified) or erofs with mkfs.erofs
// (which has no pseudo files: the root is copied to a staging directory and the mount points
// created there). Both images are padded to whole 4096-byte blocks for dm-verity.
import { cp, mkdir, open, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { NpkError } from "./errors.js";
import { runTool } from "./exec.js";
import type { Manifest } from "./manifest/index.js";
import { VERITY_BLOCK_SIZE } from "./verity.js";
import { ifExists } from "../common/errors.js";

export type FsKind = "squashfs" | "erofs";
export type Compression = "none" | "gzip" | "lzo" | "xz" | "zstd" | "lz4" | "lz4hc";
export const COMPRESSIONS: readonly Compression[] = ["none", "gzip", "lzo", "xz", "zstd", "lz4", "lz4hc"];
const SQUASHFS_COMPRESSIONS: readonly Compression[] = ["none", "gzip", "lzo", "xz", "zstd", "lz4"];
// mkfs.erofs in Debian 12 (erofs-utils 1.5) only has the lz4 family.
const EROFS_COMPRESSIONS: readonly Compression[] = ["none", "lz4", "lz4hc"];

export function defaultCompression(fs: FsKind): Compression {
  return fs === "squashfs" ? "gzip" : "lz4hc";
}

export interface MkfsOptions {
  fs: FsKind;
  compression: Compression;
  /** squashfs block size in bytes. */
  blockSize?: number;
  signal?: AbortSignal;
}

/** A directory that must exist in the image (a mount point), with Northstar's mode for it. */
export interface MountPointDir {
  path: string;
  mode: number;
}

function modeFor(mount: NonNullable<Manifest["mounts"]>[string]): number {
  switch (mount.type) {
    case "bind":
      return (mount.options ?? "").split(",").includes("rw") ? 0o755 : 0o555;
    case "resource":
      return 0o555;
    case "proc":
    case "sysfs":
      return 0o444;
    default:
      return 0o755;
  }
}

/** Every directory level of every mount target plus /dev, parents first, each once. */
export function mountPointDirs(manifest: Pick<Manifest, "mounts">): MountPointDir[] {
  const dirs = new Map<string, number>([["/dev", 0o755]]);
  const targets = Object.keys(manifest.mounts ?? {}).sort();
  for (const target of targets) {
    const mount = manifest.mounts?.[target];
    if (mount === undefined) continue;
    const parts = target.split("/").filter((p) => p.length > 0);
    for (let i = 1; i <= parts.length; i++) {
      const dir = `/${parts.slice(0, i).join("/")}`;
      if (!dirs.has(dir)) dirs.set(dir, i === parts.length ? modeFor(mount) : 0o755);
    }
  }
  return [...dirs.entries()].map(([path, mode]) => ({ path, mode }));
}

/** mksquashfs pseudo-file definitions (`PATH d MODE UID GID`) for the mount point dirs. */
export function squashfsPseudoFile(dirs: MountPointDir[], uid: number, gid: number): string {
  return dirs.map((d) => `${d.path} d ${d.mode.toString(8)} ${uid} ${gid}\n`).join("");
}

async function padToBlock(path: string): Promise<number> {
  const size = (await stat(path)).size;
  const padded = Math.ceil(size / VERITY_BLOCK_SIZE) * VERITY_BLOCK_SIZE;
  if (padded !== size) {
    const file = await open(path, "r+");
    try {
      await file.truncate(padded);
    } finally {
      await file.close();
    }
  }
  return padded;
}

async function mksquashfs(manifest: Manifest, root: string, image: string, work: string, opts: MkfsOptions) {
  const pseudo = join(work, "pseudo");
  await writeFile(pseudo, squashfsPseudoFile(mountPointDirs(manifest), manifest.uid, manifest.gid));
  const args = [root, image, "-noappend", "-no-progress", "-quiet", "-force-uid", String(manifest.uid)];
  args.push("-force-gid", String(manifest.gid), "-pf", pseudo);
  if (opts.blockSize !== undefined) args.push("-b", String(opts.blockSize));
  if (opts.compression === "none") args.push("-noI", "-noD", "-noF", "-noX", "-no-fragments");
  else args.push("-comp", opts.compression);
  await runTool("mksquashfs", args, { signal: opts.signal });
}

async function mkerofs(manifest: Manifest, root: string, image: string, work: string, opts: MkfsOptions) {
  const staging = join(work, "root");
  await cp(root, staging, { recursive: true, preserveTimestamps: true, verbatimSymlinks: true });
  for (const dir of mountPointDirs(manifest)) {
    await mkdir(join(staging, dir.path), { recursive: true, mode: dir.mode });
  }
  const args = [`--force-uid=${manifest.uid}`, `--force-gid=${manifest.gid}`, "-T0"];
  if (opts.compression !== "none") args.push(`-z${opts.compression}`);
  args.push(image, staging);
  try {
    await runTool("mkfs.erofs", args, { signal: opts.signal });
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/** Builds `image` from `root`; `work` is an empty scratch directory. Returns the image size. */
export async function buildFsImage(
  manifest: Manifest,
  root: string,
  image: string,
  work: string,
  opts: MkfsOptions,
): Promise<number> {
  const allowed = opts.fs === "squashfs" ? SQUASHFS_COMPRESSIONS : EROFS_COMPRESSIONS;
  if (!allowed.includes(opts.compression)) {
    throw new NpkError(
      "usage",
      `${opts.fs} does not support compression ${opts.compression} (use ${allowed.join(", ")})`,
    );
  }
  if (opts.blockSize !== undefined && opts.fs !== "squashfs") {
    throw new NpkError("usage", "a block size can only be given for squashfs");
  }
  const rootStat = await ifExists(stat(root));
  if (rootStat === undefined || !rootStat.isDirectory()) {
    throw new NpkError("io", `root directory ${root} does not exist or is not a directory`);
  }
  if (opts.fs === "squashfs") await mksquashfs(manifest, root, image, work, opts);
  else await mkerofs(manifest, root, image, work, opts);
  return padToBlock(image);
}
