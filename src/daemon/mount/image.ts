// Mounts an NPK's fs.img read-only, nosuid, nodev straight from the NPK file.
// - squashfs: a loop device over the fs.img range with LO_FLAGS_AUTOCLEAR, then mount(2)
//   (./file-mount.ts mountLoop, O(1) in the number of loop devices, unlike `mount -o loop`), so
//   the device is released by the kernel on umount, when the mount fails, and even if Skiff dies
//   between attaching and mounting. umount() still checks and detaches a device left attached.
// - erofs: a file-backed mount at `fsoffset=` (no loop device); if the kernel or helper
//   cannot do that, the same loop path as squashfs.
// - "dm-verity" (signed images, asked for explicitly): the image is mounted from a kernel
//   verity device (./dm-verity.ts) that checks every block when it is read; umount() removes
//   the device, and with it its loop device.
// The mounted range is the file system data only (fs.img without the verity hash area).
// INVARIANTS: one handle per mount; umount() is called once per handle. util-linux (the
// fallback without skiff-mount) may give two mounts of the same NPK range one shared loop device;
// detaching it while the other mount still holds it only marks it autoclear, so each umount()
// can release "its" device safely.
import { readFile, stat } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { existsSync } from "node:fs";
import { NpkError } from "../../npk/errors.js";
import { runTool } from "../../npk/exec.js";
import type { Npk } from "../../npk/npk.js";
import { closeVerityDevice, isVerityMountSource, openVerityDevice, type VerityNpk } from "./dm-verity.js";
import { MS_NODEV, MS_NOSUID, MS_RDONLY, mountFile, mountLoop } from "./file-mount.js";
import type { VerityProtection } from "../../protocol/messages.js";
import { findMount, loopBackingFile, parseMountInfo } from "./mountinfo.js";
import { ifExists, undoAfter } from "../../common/errors.js";

export type MountMethod = "loop" | "file" | "dm-verity";

export interface MountHandle {
  target: string;
  fsType: "squashfs" | "erofs";
  method: MountMethod;
  /** The loop device under a "loop" mount, as found after mounting. */
  loopDevice?: string;
  /** The device-mapper name of a "dm-verity" mount's verity device. */
  verityDevice?: string;
  /**
   * How the image's blocks are protected, as the package executor mounted it: "kernel" (a
   * "dm-verity" mount), "userspace" (checked once before a plain mount); absent means "none".
   */
  verity?: VerityProtection;
}

export type MountableNpk = Pick<Npk, "path" | "fsImage" | "verity">;

export interface MountImageOptions {
  /** Force a method; by default erofs tries "file" first and squashfs uses "loop". */
  method?: MountMethod;
  /** The device-mapper name for method "dm-verity" (see verityDeviceName). */
  verityName?: string;
  /**
   * The manifest's `selinux.mount_context`, put on the image mount as `context=` (Northstar does
   * so where SELinux is enabled; the caller checks selinuxEnabled()). Validated by the manifest
   * check: `0-9 A-Z a-z : _` only, so it cannot add mount options of its own.
   */
  selinuxContext?: string;
  signal?: AbortSignal;
}

/** Whether SELinux is enabled on this host, probed as Northstar does (/sys/fs/selinux/enforce). */
export function selinuxEnabled(): boolean {
  return existsSync("/sys/fs/selinux/enforce");
}

/** The `mount -o` options of a loop mount of the image. Pure. */
export function loopMountOptions(npk: MountableNpk, selinuxContext?: string): string {
  const context = selinuxContext === undefined ? "" : `,context=${selinuxContext}`;
  return `ro,nosuid,nodev,loop,offset=${npk.fsImage.offset},sizelimit=${dataSize(npk)}${context}`;
}

function dataSize(npk: MountableNpk): number {
  return npk.verity?.offset ?? npk.fsImage.size;
}

async function mountViaLoop(
  npk: MountableNpk,
  target: string,
  selinuxContext: string | undefined,
  signal?: AbortSignal,
): Promise<string | undefined> {
  const context = selinuxContext === undefined ? "" : `context=${selinuxContext}`;
  const range = { offset: npk.fsImage.offset, size: dataSize(npk) };
  try {
    return await mountLoop(
      npk.path,
      range,
      target,
      npk.fsImage.type,
      MS_RDONLY | MS_NOSUID | MS_NODEV,
      context,
      signal,
    );
  } catch (e) {
    // Only a host without skiff-mount (native/ not built) takes util-linux's way (O(loop devices) per mount, see file-mount.ts).
    if (((e as Error).cause as NodeJS.ErrnoException | undefined)?.code !== "ENOENT") throw e;
  }
  const options = loopMountOptions(npk, selinuxContext);
  await runTool("mount", ["-t", npk.fsImage.type, "-o", options, npk.path, target], { signal });
  const mounted = await findMount(target);
  return mounted?.source.startsWith("/dev/loop") === true ? mounted.source : undefined;
}

/** Mounts fs.img of `npk` on the existing directory `target`. */
export async function mountImage(
  npk: MountableNpk,
  target: string,
  opts: MountImageOptions = {},
): Promise<MountHandle> {
  // The device of the directory changes when something is mounted on it: one stat(2) instead
  // of reading the mount table, which grows with every image mounted (O(mounts) per start).
  // A target that does not exist makes the mount itself fail, with the tool's message.
  const before = await stat(target).then(
    (s) => s.dev,
    () => undefined,
  );
  try {
    return await mountOnce(npk, target, opts);
  } catch (e) {
    // An abort can kill the mount tool after the mount(2) call succeeded: undo such a mount.
    const after = await ifExists(stat(target));
    if (before !== undefined && after !== undefined && after.dev !== before) {
      await undoAfter(e, `umount ${target}`, runTool("umount", [target]));
    }
    throw e;
  }
}

async function mountOnce(npk: MountableNpk, target: string, opts: MountImageOptions): Promise<MountHandle> {
  const fsType = npk.fsImage.type;
  const method = opts.method ?? (fsType === "erofs" ? "file" : "loop");
  if (method === "dm-verity") return mountViaVerity(npk, target, opts);
  if (method === "file") {
    if (fsType !== "erofs")
      throw new NpkError("usage", `${fsType} cannot be mounted from a file without a loop device`);
    try {
      await mountFile(
        npk.path,
        target,
        "erofs",
        MS_RDONLY | MS_NOSUID | MS_NODEV,
        `fsoffset=${npk.fsImage.offset}` +
          (opts.selinuxContext === undefined ? "" : `,context=${opts.selinuxContext}`),
        opts.signal,
      );
      return { target, fsType, method: "file" };
    } catch (e) {
      // Only an explicit request for "file" must succeed; the default falls back to a loop device.
      if (opts.method === "file" || opts.signal?.aborted === true) throw e;
    }
  }
  const loopDevice = await mountViaLoop(npk, target, opts.selinuxContext, opts.signal);
  const handle: MountHandle = { target, fsType, method: "loop" };
  if (loopDevice !== undefined) handle.loopDevice = loopDevice;
  return handle;
}

async function mountViaVerity(
  npk: MountableNpk,
  target: string,
  opts: MountImageOptions,
): Promise<MountHandle> {
  const { verity } = npk;
  if (verity === undefined) throw new NpkError("verity", `${npk.path} is not signed: no verity data`);
  if (opts.verityName === undefined) throw new NpkError("usage", "a dm-verity mount needs a device name");
  const fsType = npk.fsImage.type;
  const device = await openVerityDevice({ ...npk, verity } satisfies VerityNpk, opts.verityName, opts.signal);
  try {
    const context = opts.selinuxContext === undefined ? "" : `,context=${opts.selinuxContext}`;
    const mounted = runTool(
      "mount",
      ["-t", fsType, "-o", `ro,nosuid,nodev${context}`, device.device, target],
      {
        signal: opts.signal,
      },
    );
    await Promise.all([mounted, device.loopReleased]);
  } catch (e) {
    // An abort can kill mount after mount(2) succeeded; the device cannot go while mounted.
    const mounted = await findMount(target);
    if (mounted !== undefined && isVerityMountSource(mounted.source, device)) {
      await undoAfter(e, `umount ${target}`, runTool("umount", [target]));
    }
    await undoAfter(e, `closing ${device.name}`, closeVerityDevice(device.name));
    throw e;
  }
  return { target, fsType, method: "dm-verity", verityDevice: device.name, verity: "kernel" };
}

/** Unmounts and makes sure the loop device or verity device (if any) is released. */
export async function umount(handle: MountHandle, signal?: AbortSignal): Promise<void> {
  await runTool("umount", [handle.target], { signal });
  if (handle.verityDevice !== undefined) await closeVerityDevice(handle.verityDevice, signal);
  const loop = handle.loopDevice;
  if (loop !== undefined && (await loopBackingFile(loop)) !== undefined) {
    // Autoclear normally releases the device; it can stay when it was shared or not autoclear.
    await runTool("losetup", ["-d", loop], { signal }).catch(async (e: unknown) => {
      if ((await loopBackingFile(loop)) !== undefined) throw e;
    });
    await awaitLoopRelease(loop, signal);
  }
}

const LOOP_RELEASE_WAIT_MS = 2000;
const LOOP_RELEASE_POLL_MS = 10;

/**
 * A device that another opener (udev probing it, a second mount of the same range) still holds
 * is only marked autoclear by `losetup -d`: the kernel detaches it at its last close. Waits
 * (bounded, polling; the loop is never blocked) until that happened, unless a mount still uses
 * it, so that umount() returning means the device is gone.
 */
async function awaitLoopRelease(loop: string, signal?: AbortSignal): Promise<void> {
  const deadline = Date.now() + LOOP_RELEASE_WAIT_MS;
  while ((await loopBackingFile(loop)) !== undefined && Date.now() < deadline) {
    const mounted = parseMountInfo(await readFile("/proc/self/mountinfo", "utf8"));
    if (mounted.some((m) => m.source === loop)) return;
    await sleep(LOOP_RELEASE_POLL_MS, undefined, { signal });
  }
}
