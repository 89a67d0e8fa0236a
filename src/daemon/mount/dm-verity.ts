// Kernel dm-verity for signed images (docs/npk.md, "Image protection"). Where device-mapper and
// the dm_verity target exist, a keyed package's fs.img is mapped through a verity device built
// from the signed root hash, so the kernel checks every block when it is read; elsewhere the
// daemon falls back to the userspace check before mounting (src/npk/verity.ts verifyVerity).
//
// A device is set up with the kernel's own tools, each a child process (the event loop never
// waits on the kernel):
//   1. `losetup --find --show --read-only --offset O --sizelimit S NPK`: a loop device over fs.img
//      (data blocks, then the superblock block, then the hash levels, as Northstar writes them);
//   2. `dmsetup create NAME --readonly --table "0 SECTORS verity 1 LOOP LOOP 4096 4096 N N+1
//      sha256 ROOT SALT"`: data and hash tree on the same loop device, the tree starting after
//      the superblock block; ROOT is the signed `verity-hash`, N the signed `verity-offset` /
//      4096 (the salt is the superblock's: a different salt cannot reproduce the signed root);
//   3. `losetup -d LOOP`: the verity device holds the loop open, so the kernel only marks it
//      autoclear, and it goes away by itself when the verity device is removed.
// Without udev (the VM lane) `dmsetup create` makes no /dev/mapper node, so the mount uses the
// kernel's own node, /dev/dm-N, found through /sys/block/dm-N/dm/name.
//
// Names: `skiff-<scope hash>-<package hash>`, hex only (nothing from a package reaches the
// kernel or a command line unhashed). The scope is the daemon's run directory, so a daemon finds
// its own leftovers after a crash by prefix and never touches another daemon's devices.
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { access, readdir, readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { createInterface } from "node:readline";
import { NpkError } from "../../npk/errors.js";
import { runTool } from "../../npk/exec.js";
import { VERITY_ALGORITHM, VERITY_BLOCK_SIZE } from "../../npk/verity.js";
import type { Npk } from "../../npk/npk.js";
import { loopBackingFile, parseMountInfo } from "./mountinfo.js";
import { ifExists, settled, undoAfter } from "../../common/errors.js";

export type { VerityProtection } from "../../protocol/messages.js";

export type KernelVerityProbe = { available: true } | { available: false; reason: string };

const SECTORS_PER_BLOCK = VERITY_BLOCK_SIZE / 512;
const HEX_DIGEST = /^[0-9a-f]{64}$/;
/** device-mapper's DM_NAME_LEN is 128 with the NUL. */
const DM_NAME_MAX = 127;

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

async function verityTargetListed(signal?: AbortSignal): Promise<boolean> {
  const { stdout } = await runTool("dmsetup", ["targets"], { signal });
  return stdout.split("\n").some((line) => line.split(/\s+/)[0] === "verity");
}

/**
 * Whether kernel dm-verity can be used: /dev/mapper/control, and the `verity` target listed by
 * `dmsetup targets` (after `modprobe dm-verity` when it is a module not loaded yet).
 */
export async function probeKernelVerity(signal?: AbortSignal): Promise<KernelVerityProbe> {
  if (!(await exists("/dev/mapper/control"))) {
    return { available: false, reason: "no device-mapper: /dev/mapper/control is missing" };
  }
  try {
    if (await verityTargetListed(signal)) return { available: true };
    // The module may be built in, or absent: the listing that follows is the answer either way.
    await settled(runTool("modprobe", ["dm-verity"], { signal }));
    if (await verityTargetListed(signal)) return { available: true };
    return { available: false, reason: "no dm-verity: the verity target is not listed by dmsetup targets" };
  } catch (e) {
    if (signal?.aborted === true) throw e;
    return { available: false, reason: `device-mapper unusable: ${(e as Error).message}` };
  }
}

function shortHash(text: string, hexDigits: number): string {
  return createHash("sha256").update(text).digest("hex").slice(0, hexDigits);
}

/** This daemon's device name prefix: its run directory, hashed. */
export function verityNamePrefix(runDir: string): string {
  return `skiff-${shortHash(resolve(runDir), 12)}-`;
}

/** The verity device name of one package; the same on every start of the same daemon. */
export function verityDeviceName(prefix: string, repository: string, container: string): string {
  if (!/^skiff-[0-9a-f]{12}-$/.test(prefix))
    throw new Error(`bad verity name prefix ${JSON.stringify(prefix)}`);
  const name = `${prefix}${shortHash(`${repository}\0${container}`, 24)}`;
  if (name.length > DM_NAME_MAX) throw new Error(`verity device name ${name} is too long`);
  return name;
}

export interface VerityTableParams {
  /** The block device holding fs.img from its start: data, superblock block, hash levels. */
  device: string;
  /** Data blocks of 4096 bytes: the signed verity-offset / 4096. */
  dataBlocks: number;
  /** The signed root hash, lowercase hex. */
  rootHash: string;
  salt: Buffer;
}

/** The device-mapper table line of a verity device (format version 1, sha256, 4096-byte blocks). */
export function verityTable(p: VerityTableParams): string {
  if (!/^\/dev\/loop[0-9]+$/.test(p.device) && !/^[0-9]+:[0-9]+$/.test(p.device)) {
    throw new NpkError("verity", `not a loop device or major:minor: ${JSON.stringify(p.device)}`);
  }
  if (!Number.isSafeInteger(p.dataBlocks) || p.dataBlocks <= 0) {
    throw new NpkError("verity", `bad data block count ${p.dataBlocks}`);
  }
  if (!HEX_DIGEST.test(p.rootHash))
    throw new NpkError("verity", "the root hash is not a lowercase hex sha256");
  if (p.salt.length > 256) throw new NpkError("verity", `salt of ${p.salt.length} bytes exceeds 256`);
  const salt = p.salt.length === 0 ? "-" : p.salt.toString("hex");
  return [
    0,
    p.dataBlocks * SECTORS_PER_BLOCK,
    "verity",
    1,
    p.device,
    p.device,
    VERITY_BLOCK_SIZE,
    VERITY_BLOCK_SIZE,
    p.dataBlocks,
    // The hash tree starts after the superblock block that follows the data.
    p.dataBlocks + 1,
    VERITY_ALGORITHM,
    p.rootHash,
    salt,
  ].join(" ");
}

export interface VerityDevice {
  /** The device-mapper name. */
  name: string;
  /** The kernel's node, /dev/dm-N. */
  device: string;
}

/** A signed package: fs.img located, verity data from the checked signature. */
export type VerityNpk = Pick<Npk, "path" | "fsImage"> & { verity: NonNullable<Npk["verity"]> };

/** The /dev/dm-N node of device-mapper device `name`, or undefined when it does not exist. */
export async function dmNodeOf(name: string): Promise<string | undefined> {
  return (await listDmDevices()).find((d) => d.name === name)?.device;
}

/** Every device-mapper device: name and /dev/dm-N (from sysfs, no child process). */
export async function listDmDevices(): Promise<VerityDevice[]> {
  const blocks = (await readdir("/sys/block").catch(() => [] as string[])).filter((b) => /^dm-\d+$/.test(b));
  const found = await Promise.all(
    blocks.map(async (block) => {
      const name = await ifExists(readFile(`/sys/block/${block}/dm/name`, "utf8"));
      return name === undefined ? [] : [{ name: name.trim(), device: `/dev/${block}` }];
    }),
  );
  return found.flat();
}

/**
 * major:minor numbers of a verity device (/dev/dm-N) and of the devices under it (its loop), from
 * sysfs. The kernel's corruption message names the data device, which is the loop.
 */
export async function verityDeviceNumbers(device: string): Promise<string[]> {
  const base = device.slice(device.lastIndexOf("/") + 1);
  const slaves = await readdir(`/sys/block/${base}/slaves`).catch(() => [] as string[]);
  const numbers = await Promise.all(
    [base, ...slaves].map((b) => ifExists(readFile(`/sys/block/${b}/dev`, "utf8"))),
  );
  return numbers.flatMap((n) => (n === undefined ? [] : [n.trim()]));
}

/**
 * Creates the verity device `name` over fs.img of `npk`. Throws NpkError("tool") when a tool
 * fails; on any failure nothing is left behind (the loop device is released by the kernel).
 * `loopReleased` settles once the loop is marked autoclear (step 3); it never rejects.
 */
export async function openVerityDevice(
  npk: VerityNpk,
  name: string,
  signal?: AbortSignal,
): Promise<VerityDevice & { loopReleased: Promise<void> }> {
  const dataBlocks = npk.verity.offset / VERITY_BLOCK_SIZE;
  // A device of this name that no mount of ours uses is a leftover (the state owner mounts a
  // package once); it goes first, or the create below would fail.
  await settled(closeVerityDevice(name, signal)); // the create below reports a device that stayed
  const { stdout } = await runTool(
    "losetup",
    [
      "--find",
      "--show",
      "--read-only",
      "--offset",
      String(npk.fsImage.offset),
      "--sizelimit",
      String(npk.fsImage.size),
      npk.path,
    ],
    { signal },
  );
  const loop = stdout.trim();
  // Held by the verity device, the loop is only marked autoclear by `losetup -d`; not held
  // (the create failed), it is detached at once.
  const releaseLoop = (): Promise<void> =>
    runTool("losetup", ["-d", loop]).then(
      () => undefined,
      () => undefined,
    );
  let created = false;
  try {
    const table = verityTable({
      device: loop,
      dataBlocks,
      rootHash: npk.verity.rootHash,
      salt: npk.verity.superblock.salt,
    });
    await runTool("dmsetup", ["create", name, "--readonly", "--table", table], { signal });
    created = true;
    const device = await dmNodeOf(name);
    if (device === undefined)
      throw new NpkError("tool", `dmsetup created ${name} but /sys/block shows no such device`);
    if (!(await exists(device))) throw new NpkError("tool", `${device} (${name}) has no device node`);
    // The caller mounts meanwhile: one process less on the mount's critical path.
    return { name, device, loopReleased: releaseLoop() };
  } catch (e) {
    if (created) await undoAfter(e, `closing ${name}`, closeVerityDevice(name));
    await releaseLoop();
    throw e;
  }
}

/** Removes verity device `name` (its loop device goes with it); a device already gone is fine. */
export async function closeVerityDevice(name: string, signal?: AbortSignal): Promise<void> {
  if ((await dmNodeOf(name)) === undefined) return;
  await runTool("dmsetup", ["remove", "--retry", name], { signal }).catch(async (e: unknown) => {
    if ((await dmNodeOf(name)) !== undefined) throw e;
  });
}

/** mount(8) shows a device-mapper node as /dev/mapper/NAME when that node exists (udev). */
export function isVerityMountSource(source: string, device: VerityDevice): boolean {
  return source === device.device || source === `/dev/mapper/${device.name}`;
}

/**
 * Daemon start: removes this daemon's verity devices (names starting with `prefix`) that no
 * adopted mount uses (`keep`), after unmounting them where a crashed daemon left them mounted
 * under `runDir`. Returns the names removed. A device mounted elsewhere is left and reported.
 */
export async function removeStaleVerityDevices(
  prefix: string,
  keep: ReadonlySet<string>,
  runDir: string,
): Promise<{ removed: string[]; failed: { name: string; error: string }[] }> {
  const stale = (await listDmDevices()).filter((d) => d.name.startsWith(prefix) && !keep.has(d.name));
  const removed: string[] = [];
  const failed: { name: string; error: string }[] = [];
  if (stale.length === 0) return { removed, failed };
  const mounts = parseMountInfo(await readFile("/proc/self/mountinfo", "utf8"));
  const root = `${resolve(runDir)}/`;
  for (const device of stale) {
    try {
      for (const m of mounts.filter((e) => isVerityMountSource(e.source, device)).reverse()) {
        if (!m.mountPoint.startsWith(root)) throw new Error(`mounted on ${m.mountPoint}, outside ${runDir}`);
        await runTool("umount", [m.mountPoint]);
      }
      await closeVerityDevice(device.name);
      removed.push(device.name);
    } catch (e) {
      failed.push({ name: device.name, error: (e as Error).message });
    }
  }
  return { removed, failed };
}

/**
 * Daemon start: detaches loop devices over files in `dirs` (the repositories) that nothing holds
 * and nothing mounts: what a daemon that died between `losetup` and `dmsetup create` (or
 * `losetup -d`) left. Loops under mounts and verity devices are in use and stay.
 */
export async function releaseStrayLoops(dirs: readonly string[]): Promise<string[]> {
  const roots = dirs.map((d) => `${resolve(d)}/`);
  const loops = (await readdir("/sys/block").catch(() => [] as string[])).filter((b) => /^loop\d+$/.test(b));
  const mounted = new Set(
    parseMountInfo(await readFile("/proc/self/mountinfo", "utf8")).map((e) => e.source),
  );
  const released: string[] = [];
  for (const loop of loops) {
    const backing = await loopBackingFile(`/dev/${loop}`);
    if (backing === undefined || !roots.some((r) => backing.startsWith(r))) continue;
    const holders = await readdir(`/sys/block/${loop}/holders`).catch(() => ["?"]);
    if (holders.length > 0 || mounted.has(`/dev/${loop}`)) continue;
    await runTool("losetup", ["-d", `/dev/${loop}`]).then(
      () => released.push(`/dev/${loop}`),
      () => undefined,
    );
  }
  return released;
}

/** A block the kernel found corrupted: `device-mapper: verity: 7:3: data block 53 is corrupted`. */
export interface VerityCorruption {
  /** major:minor of the verity device's data device (its loop device). */
  device: string;
  kind: "data" | "metadata";
  block: number;
}

const CORRUPTION = /device-mapper: verity: (\d+:\d+): (data|metadata) block (\d+) is corrupted/;

export function parseVerityCorruption(line: string): VerityCorruption | undefined {
  const m = CORRUPTION.exec(line);
  if (m === null) return undefined;
  return { device: m[1]!, kind: m[2] as "data" | "metadata", block: Number(m[3]) };
}

/**
 * Follows the kernel log (`dmesg --follow-new`, a child process: the loop never reads /dev/kmsg
 * itself) and calls `onCorruption` for each verity corruption message. `stop()` kills the child.
 */
export function watchVerityCorruption(
  onCorruption: (c: VerityCorruption) => void,
  onError: (e: Error) => void,
): { stop(): void } {
  const child = spawn("dmesg", ["--follow-new", "--kernel", "--notime"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stopped = false;
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr = (stderr + d).slice(-500)));
  child.on("error", (e) => onError(e));
  child.on("exit", (code, signal) => {
    if (!stopped) onError(new Error(`dmesg --follow-new ended (${code ?? signal}): ${stderr.trim()}`));
  });
  createInterface({ input: child.stdout }).on("line", (line) => {
    const found = parseVerityCorruption(line);
    if (found !== undefined) onCorruption(found);
  });
  return {
    stop() {
      stopped = true;
      child.kill("SIGKILL");
    },
  };
}
