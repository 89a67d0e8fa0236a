/**
 * A pod's network, IPC and UTS namespaces, held open without a process: util-linux `unshare
 * --net=FILE --ipc=FILE --uts=FILE` creates them and bind-mounts each `/proc/<pid>/ns/<kind>`
 * onto FILE, which must exist (an empty file). The namespace lives as long as the bind mount;
 * `umount FILE` lets it go once no process is in it.
 *
 * Kernel facts this relies on (checked on Linux 6.1 and 6.18): a bind mount of an nsfs file keeps
 * its namespace alive; only a mount namespace file must sit on a non-shared mount (the kernel's
 * loop check), net/ipc/uts do not, but the pods directory is made a private mount of its own
 * anyway so that these mounts neither propagate into nor arrive from other mount namespaces.
 */
import { readFile, writeFile } from "node:fs/promises";
import { runTool } from "./tools.js";

export type NamespaceKind = "net" | "ipc" | "uts";

/** Mount points in this process's mount namespace (`/proc/self/mountinfo`, field 5, unescaped). */
export async function mountPoints(): Promise<Set<string>> {
  const text = await readFile("/proc/self/mountinfo", "utf8");
  const points = new Set<string>();
  for (const line of text.split("\n")) {
    const point = line.split(" ")[4];
    if (point !== undefined)
      points.add(point.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))));
  }
  return points;
}

/** Makes `dir` a private mount of its own (a bind mount onto itself) unless it is a mount point already. */
export async function ensurePrivateMount(dir: string): Promise<void> {
  if (!(await mountPoints()).has(dir)) await runTool("mount", ["--bind", dir, dir]);
  await runTool("mount", ["--make-private", dir]);
}

/**
 * Creates the namespaces `files` names (kind → file path) and, with a network namespace, brings
 * its loopback up: one `unshare` whose command runs inside them.
 */
export async function createNamespaces(files: Partial<Record<NamespaceKind, string>>): Promise<void> {
  const entries = Object.entries(files) as [NamespaceKind, string][];
  if (entries.length === 0) return;
  await Promise.all(entries.map(([, file]) => writeFile(file, "", { flag: "w" })));
  const args = entries.map(([kind, file]) => `--${kind}=${file}`);
  const inside = files.net !== undefined ? ["ip", "link", "set", "lo", "up"] : ["true"];
  await runTool("unshare", [...args, "--", ...inside]);
}

/** Sets the hostname of the UTS namespace held at `utsFile` (validated by spec.ts). */
export async function setHostname(utsFile: string, hostname: string): Promise<void> {
  await runTool("nsenter", [`--uts=${utsFile}`, "--", "hostname", hostname]);
}

/** Unmounts each file that is a mount point (idempotent: a file no longer mounted is skipped). */
export async function releaseNamespaces(files: string[]): Promise<void> {
  const points = await mountPoints();
  for (const file of files) if (points.has(file)) await runTool("umount", [file]);
}
