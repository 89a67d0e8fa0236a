/**
 * CRI container records on disk, `<data_dir>/cri/containers/<id>/container.json` (written via
 * tmp + rename), and the synthetic package each becomes in the daemon's state. The records are
 * read at daemon start, before the state exists, so that CRI containers are in the initial state
 * and the ordinary adoption re-attaches running ones (their monitors outlived skiffd).
 */
import { mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import type { Logger } from "pino";
import { resolveWithin } from "../../common/paths.js";
import { ifExists, messageOf } from "../../common/errors.js";
import type { Manifest } from "../../npk/manifest/index.js";
import { formatContainerId, type ContainerId } from "../../protocol/container.js";
import { CRI_REPOSITORY, type CriContainerPart, type InstalledPackage } from "../../daemon/events/data.js";

export interface CriContainerRecord {
  id: string;
  podSandboxId: string;
  /** The Skiff container id (`name:version`) of its record in the daemon's state. */
  skiffId: ContainerId;
  metadata: { name: string; attempt: number };
  /** `ContainerConfig.image.image` as the kubelet gave it, and the image's ID. */
  image: string;
  imageRef: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** `ContainerConfig.log_path` as given (the absolute path is `cri.logPath`). */
  logPathRequested: string;
  manifest: Manifest;
  cri: CriContainerPart;
  /** Epoch nanoseconds, as decimal strings (CRI's int64 timestamps). */
  createdAt: string;
  startedAt?: string;
}

const ID_RE = /^[0-9a-f]{64}$/;

export function containersDirOf(criDir: string): string {
  return resolveWithin(criDir, "containers");
}

/** The directory of one container; `id` is Skiff's (64 hex), never request text. */
export function containerDirOf(criDir: string, id: string): string {
  if (!ID_RE.test(id)) throw new Error(`not a CRI container id: ${id.slice(0, 80)}`);
  return resolveWithin(containersDirOf(criDir), id);
}

export function skiffIdOf(manifest: Pick<Manifest, "name" | "version">): ContainerId {
  return formatContainerId(manifest.name, manifest.version);
}

/** The package a CRI container is in the daemon's state: no NPK file, the manifest and `cri`. */
export function syntheticPackage(record: Pick<CriContainerRecord, "manifest" | "cri">): InstalledPackage {
  return {
    repository: CRI_REPOSITORY,
    size: 0,
    cri: record.cri,
    npk: {
      path: "",
      version: "",
      entries: [],
      manifestText: "",
      manifest: record.manifest,
      verified: false,
      fsImage: { offset: 0, size: 0, type: "squashfs" },
    },
  };
}

export async function writeRecord(criDir: string, record: CriContainerRecord): Promise<void> {
  const dir = containerDirOf(criDir, record.id);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const path = resolveWithin(dir, "container.json");
  await writeFile(`${path}.tmp`, JSON.stringify(record), { mode: 0o600 });
  await rename(`${path}.tmp`, path);
}

export async function removeRecordDir(criDir: string, id: string): Promise<void> {
  await rm(containerDirOf(criDir, id), { recursive: true, force: true });
}

/**
 * Every record under `<criDir>/containers`. A directory without a readable record (a crash in
 * the middle of CreateContainer or RemoveContainer) is removed: nothing in the state refers to it.
 */
export async function readRecords(criDir: string, log: Logger): Promise<CriContainerRecord[]> {
  const dir = containersDirOf(criDir);
  const names = (await ifExists(readdir(dir))) ?? [];
  const records: CriContainerRecord[] = [];
  for (const name of names) {
    if (!ID_RE.test(name)) continue;
    const text = await ifExists(readFile(resolveWithin(dir, name, "container.json"), "utf8"));
    try {
      if (text === undefined) throw new Error("no container.json");
      const record = JSON.parse(text) as CriContainerRecord;
      if (record.id !== name) throw new Error(`container.json names ${record.id}`);
      records.push(record);
    } catch (e) {
      log.warn({ container: name }, `CRI container record unreadable, removed: ${messageOf(e)}`);
      await removeRecordDir(criDir, name);
    }
  }
  return records;
}
