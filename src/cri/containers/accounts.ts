/**
 * An image's /etc/passwd and /etc/group, read to resolve a user or group *name* (the image's
 * `User`, CRI's `run_as_username`). The image's root is not trusted: /etc must be a directory
 * (not a symlink) and the files are opened without following a symlink, and at most 1 MiB of each
 * is read; what is missing or refused reads as empty (the name is then not found).
 */
import { constants } from "node:fs";
import { lstat, open } from "node:fs/promises";
import { resolveWithin } from "../../common/paths.js";
import {
  parseGroup,
  parsePasswd,
  type GroupEntry,
  type PasswdEntry,
} from "../../oci-image/config-mapping.js";

const MAX_ACCOUNT_FILE = 1024 * 1024;

export interface ImageAccounts {
  passwd: PasswdEntry[];
  groups: GroupEntry[];
}

async function readAccountFile(rootfs: string, name: "passwd" | "group"): Promise<string> {
  const etc = await lstat(resolveWithin(rootfs, "etc")).catch(() => undefined);
  if (!etc?.isDirectory()) return "";
  let handle;
  try {
    handle = await open(resolveWithin(rootfs, "etc", name), constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch {
    return "";
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) return "";
    const buffer = Buffer.alloc(Math.min(st.size, MAX_ACCOUNT_FILE));
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    return buffer.subarray(0, bytesRead).toString("utf8");
  } finally {
    await handle.close();
  }
}

export async function readImageAccounts(rootfs: string): Promise<ImageAccounts> {
  const [passwd, group] = await Promise.all([
    readAccountFile(rootfs, "passwd"),
    readAccountFile(rootfs, "group"),
  ]);
  return { passwd: parsePasswd(passwd), groups: parseGroup(group) };
}
