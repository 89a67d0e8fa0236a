// `unpack` and `inspect`. Unpack writes every ZIP entry below the output directory (names are
// validated by the ZIP reader and the resolved path is checked again), then extracts fs.img to
// OUT/root with unsquashfs or fsck.erofs and removes fs.img, like Northstar's sextant.
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, open, readdir, rm } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import { dirname, join, resolve, sep } from "node:path";
import { pipeline } from "node:stream/promises";
import { NpkError, asNpkError } from "./errors.js";
import { runTool } from "./exec.js";
import { listFsImage } from "./listing.js";
import { FS_IMG_NAME, detectFsType, openNpk } from "./npk.js";
import type { Npk } from "./npk.js";
import { readZip } from "./zip.js";
import type { ZipEntry } from "./zip.js";
import { ifExists } from "../common/errors.js";

export interface UnpackOptions {
  /** Keep OUT/fs.img next to OUT/root. */
  keepFsImage?: boolean;
  signal?: AbortSignal;
}

function destinationOf(outDir: string, name: string): string {
  const base = resolve(outDir);
  const dest = resolve(base, name);
  if (!dest.startsWith(base + sep))
    throw new NpkError("zip", `entry ${JSON.stringify(name)} escapes ${outDir}`);
  return dest;
}

async function extractEntry(
  file: FileHandle,
  entry: ZipEntry,
  dest: string,
  signal?: AbortSignal,
): Promise<void> {
  await mkdir(dirname(dest), { recursive: true });
  const source =
    entry.size === 0
      ? []
      : createReadStream("", {
          fd: file,
          start: entry.dataOffset,
          end: entry.dataOffset + entry.size - 1,
          autoClose: false,
        });
  await pipeline(source, createWriteStream(dest, { flags: "wx" }), { signal });
}

async function extractFsImage(image: string, root: string, signal?: AbortSignal): Promise<void> {
  const head = Buffer.alloc(1028);
  const file = await open(image, "r");
  try {
    await file.read(head, 0, head.length, 0);
  } finally {
    await file.close();
  }
  const type = detectFsType(head);
  if (type === "squashfs") await runTool("unsquashfs", ["-no-progress", "-d", root, image], { signal });
  else if (type === "erofs") await runTool("fsck.erofs", [`--extract=${root}`, image], { signal });
  else throw new NpkError("fs", `${FS_IMG_NAME} is neither a squashfs nor an erofs image`);
}

/** Extracts `npkPath` into `outDir`, which must not exist or be empty. */
export async function unpack(npkPath: string, outDir: string, opts: UnpackOptions = {}): Promise<void> {
  const existing = await ifExists(readdir(outDir));
  if (existing !== undefined && existing.length > 0) {
    throw new NpkError("usage", `output directory ${outDir} is not empty`);
  }
  const file = await open(npkPath, "r").catch((e: unknown) => {
    throw asNpkError("io", `cannot open ${npkPath}`, e);
  });
  const created: string[] = [];
  try {
    const zip = await readZip(file);
    const targets = zip.entries.map((entry) => ({ entry, dest: destinationOf(outDir, entry.name) }));
    await mkdir(outDir, { recursive: true });
    for (const { entry, dest } of targets) {
      created.push(dest);
      await extractEntry(file, entry, dest, opts.signal);
    }
    const image = join(outDir, FS_IMG_NAME);
    if (targets.some((t) => t.entry.name === FS_IMG_NAME)) {
      created.push(join(outDir, "root"));
      await extractFsImage(image, join(outDir, "root"), opts.signal);
      if (opts.keepFsImage !== true) await rm(image);
    }
  } catch (e) {
    if (existing === undefined) await rm(outDir, { recursive: true, force: true });
    else for (const path of created) await rm(path, { recursive: true, force: true });
    throw e;
  } finally {
    await file.close();
  }
}

export interface ShortInspection {
  name: string;
  version: string;
  npkVersion: string;
  resourceContainer: boolean;
}

export interface FullInspection {
  path: string;
  npkVersion: string;
  entries: string[];
  manifest: string;
  signature?: string;
  fsImage: Npk["fsImage"];
  verity?: { offset: number; rootHash: string; salt: string; dataBlocks: number };
  /** File listing of fs.img (unsquashfs -lls or dump.erofs). */
  listing: string;
}

export async function inspectShort(path: string): Promise<ShortInspection> {
  const npk = await openNpk(path);
  return {
    name: npk.manifest.name,
    version: npk.manifest.version,
    npkVersion: npk.version,
    resourceContainer: npk.manifest.init === undefined,
  };
}

export async function inspectFull(path: string, signal?: AbortSignal): Promise<FullInspection> {
  const npk = await openNpk(path);
  const result: FullInspection = {
    path,
    npkVersion: npk.version,
    entries: npk.entries,
    manifest: npk.manifestText,
    fsImage: npk.fsImage,
    listing: await listFsImage(npk, signal),
  };
  if (npk.signature !== undefined) result.signature = npk.signature.text;
  if (npk.verity !== undefined) {
    result.verity = {
      offset: npk.verity.offset,
      rootHash: npk.verity.rootHash,
      salt: npk.verity.superblock.salt.toString("hex"),
      dataBlocks: Number(npk.verity.superblock.dataBlocks),
    };
  }
  return result;
}
