// Reads /proc/self/mountinfo to find what is mounted on a directory (e.g. which loop device
// util-linux picked for an image), and the loop device's backing file from sysfs.
import { readFile, stat } from "node:fs/promises";
import { basename, dirname, resolve } from "node:path";
import { ifExists } from "../../common/errors.js";

export interface MountInfoEntry {
  /** Unique mount ID (first field). */
  id: number;
  mountPoint: string;
  fsType: string;
  source: string;
}

/** mountinfo escapes space, tab, newline and backslash as \ooo octal. */
function unescapeOctal(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

export function parseMountInfo(text: string): MountInfoEntry[] {
  const entries: MountInfoEntry[] = [];
  for (const line of text.split("\n")) {
    const fields = line.split(" ");
    const separator = fields.indexOf("-");
    const mountPoint = fields[4];
    const fsType = fields[separator + 1];
    const source = fields[separator + 2];
    if (separator < 6 || mountPoint === undefined || fsType === undefined || source === undefined) continue;
    entries.push({
      id: Number(fields[0]),
      mountPoint: unescapeOctal(mountPoint),
      fsType,
      source: unescapeOctal(source),
    });
  }
  return entries;
}

/**
 * The topmost mount on `dir`, if any. Meant for image mount points (squashfs, erofs, dm-verity:
 * never the file system of the directory's parent): when `dir` is missing or on the same device
 * as its parent, nothing of that kind is mounted on it, and two stat(2) calls answer instead of
 * reading the mount table, which costs O(mounts) (the daemon asks once per installed package at
 * start: 1000 packages with 1000 images mounted made that O(n^2)). A bind mount of a directory
 * of the parent's own file system onto `dir` is not seen.
 */
export async function findMount(dir: string): Promise<MountInfoEntry | undefined> {
  const target = resolve(dir);
  const [own, parent] = await Promise.all([ifExists(stat(target)), ifExists(stat(dirname(target)))]);
  if (own === undefined) return undefined;
  if (parent !== undefined && own.dev === parent.dev && target !== "/") return undefined;
  const entries = parseMountInfo(await readFile("/proc/self/mountinfo", "utf8"));
  return entries.filter((e) => e.mountPoint === target).at(-1);
}

/** Backing file of a loop device, or undefined when the device is not attached. */
export async function loopBackingFile(device: string): Promise<string | undefined> {
  const text = await readFile(`/sys/block/${basename(device)}/loop/backing_file`, "utf8").catch(
    () => undefined,
  );
  return text?.trim();
}
