/**
 * The root of a Kubernetes CRI container (docs/cri.md, "Containers"): an overlay whose lower
 * layer is the image store's unpacked root (shared read-only by every container of the image)
 * and whose upper and work directories are the container's own, in its CRI directory:
 *
 *   <data_dir>/cri/containers/<id>/upper/   what the container wrote (kept until RemoveContainer)
 *   <data_dir>/cri/containers/<id>/work/    overlayfs' work directory
 *   <data_dir>/cri/containers/<id>/rootfs/  the mount point, mounted for the instance's life
 *   <data_dir>/cri/containers/<id>/exit.json  how the instance ended (written before the
 *                                             monitor's exit record is retired)
 *
 * This is the start path's mount step for a CRI package, in place of the NPK image's
 * loop/verity mount; the cleanup unmounts it.
 */
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { resolveWithin } from "../../common/paths.js";
import type { CriContainerPart } from "../events/data.js";
import type { ExitStatus } from "../../protocol/messages.js";
import { runTool } from "../../npk/exec.js";
import { findMount } from "../mount/index.js";
import { ifExists } from "../../common/errors.js";

/** How a CRI container's instance ended, as exit.json in its directory holds it. */
export interface CriExitRecord {
  status: ExitStatus;
  /** Epoch ms. */
  finishedAt: number;
}

/** Characters overlayfs' option parser treats specially: refused in any layer path. */
const OVERLAY_SPECIAL = /[,:\\]/;

export function criRootOf(cri: Pick<CriContainerPart, "dir">): string {
  return resolveWithin(cri.dir, "rootfs");
}

/** Mounts the container's overlay (again, if a crash left it mounted it is reused) and returns its root. */
export async function mountCriRoot(cri: CriContainerPart): Promise<string> {
  const upper = resolveWithin(cri.dir, "upper");
  const work = resolveWithin(cri.dir, "work");
  const root = criRootOf(cri);
  for (const path of [cri.imageRootfs, upper, work])
    if (OVERLAY_SPECIAL.test(path)) throw new Error(`${path}: overlayfs cannot take this path as a layer`);
  await Promise.all([upper, work, root].map((d) => mkdir(d, { recursive: true, mode: 0o755 })));
  if ((await findMount(root))?.fsType === "overlay") return root;
  await runTool("mount", [
    "-t",
    "overlay",
    "overlay",
    "-o",
    `lowerdir=${cri.imageRootfs},upperdir=${upper},workdir=${work}`,
    root,
  ]);
  return root;
}

/** Unmounts the container's overlay (lazily: a runtime still tearing down may hold it); not mounted is fine. */
export async function unmountCriRoot(cri: Pick<CriContainerPart, "dir">): Promise<void> {
  const root = criRootOf(cri);
  if ((await findMount(root)) === undefined) return;
  await runTool("umount", ["-l", root]);
}

/** The directory of the container's CRI log, made when the kubelet has not made it. */
export async function prepareCriLog(logPath: string): Promise<void> {
  await mkdir(dirname(logPath), { recursive: true, mode: 0o755 });
}

export async function writeCriExit(cri: Pick<CriContainerPart, "dir">, record: CriExitRecord): Promise<void> {
  const path = resolveWithin(cri.dir, "exit.json");
  await writeFile(`${path}.tmp`, JSON.stringify(record), { mode: 0o600 });
  await rename(`${path}.tmp`, path);
}

export async function readCriExit(dir: string): Promise<CriExitRecord | undefined> {
  const text = await ifExists(readFile(resolveWithin(dir, "exit.json"), "utf8"));
  return text === undefined ? undefined : (JSON.parse(text) as CriExitRecord);
}
