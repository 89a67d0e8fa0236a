/**
 * Executes package steps: committing uploads, mounting and unmounting images, uninstalling.
 * Each runs as a job outside the event loop and reports its result as a `job` event.
 */
import { mkdir, rename, rm, rmdir } from "node:fs/promises";
import type { Logger } from "pino";
import { resolveWithin } from "../../common/paths.js";
import { NpkError } from "../../npk/errors.js";
import { verifyFsImage } from "../../npk/npk.js";
import type { ContainerId } from "../../protocol/container.js";
import type { WireError } from "../../protocol/messages.js";
import type { JobResult } from "../events/types.js";
import { findMount, mountImage, umount, type MountHandle } from "../mount/index.js";
import type { Step } from "../state/steps.js";
import type { InstalledPackage, Repository } from "./repository.js";

export interface PackageExecutorOptions {
  runDir: string;
  dataDir: string;
  repositories: ReadonlyMap<string, Repository>;
  /** Enqueues a job result (waits while the event queue is full). */
  report: (result: JobResult) => Promise<void>;
  /** Ends a container's prepared instance (before its image is unmounted). */
  discardPrepared: (container: ContainerId) => Promise<void>;
  log: Logger;
}

export class PackageExecutor {
  constructor(private readonly o: PackageExecutorOptions) {}

  /** `<run_dir>/images/<name>-<version>`. */
  mountPoint(container: ContainerId): string {
    return resolveWithin(this.o.runDir, "images", container.replace(":", "-"));
  }

  /** A container's persist directory, `<data_dir>/<name>`: what `uninstall` with `wipe` removes. */
  persistDir(name: string): string {
    return resolveWithin(this.o.dataDir, name);
  }

  async commitInstall(step: Extract<Step, { type: "commit_install" }>): Promise<void> {
    const repo = this.o.repositories.get(step.pkg.repository)!;
    const { name, version } = step.pkg.npk.manifest;
    const finalPath = repo.packagePath(name, version);
    try {
      await rename(step.tempPath, finalPath);
      const pkg: InstalledPackage = { ...step.pkg, npk: { ...step.pkg.npk, path: finalPath } };
      this.o.log.info({ container: step.container, repository: repo.id }, "installed");
      await this.o.report({ type: "install_committed", container: step.container, pkg, reply: step.reply });
    } catch (e) {
      await rm(step.tempPath, { force: true });
      await this.o.report({
        type: "install_committed",
        container: step.container,
        error: `cannot store the package: ${(e as Error).message}`,
        reply: step.reply,
      });
    }
  }

  async discardUpload(tempPath: string): Promise<void> {
    await rm(tempPath, { force: true });
  }

  /** Verifies (keyed repositories) and mounts one image. */
  async mount(container: ContainerId, pkg: InstalledPackage, signal?: AbortSignal): Promise<MountHandle> {
    const repo = this.o.repositories.get(pkg.repository);
    if (repo?.key) await verifyFsImage(pkg.npk, signal);
    const target = this.mountPoint(container);
    await mkdir(target, { recursive: true, mode: 0o755 });
    try {
      return await mountImage(pkg.npk, target, { signal });
    } catch (e) {
      await rmdir(target).catch(() => undefined);
      throw e;
    }
  }

  /** The mount a previous daemon left on this container's mount point, if any. */
  async adoptMount(container: ContainerId, pkg: InstalledPackage): Promise<MountHandle | undefined> {
    const target = this.mountPoint(container);
    const entry = await findMount(target);
    if (!entry) return undefined;
    const loop = entry.source.startsWith("/dev/loop");
    return {
      target,
      fsType: pkg.npk.fsImage.type,
      method: loop ? "loop" : "file",
      ...(loop ? { loopDevice: entry.source } : {}),
    };
  }

  async unmount(handle: MountHandle): Promise<void> {
    await umount(handle);
    await rmdir(handle.target).catch(() => undefined);
  }

  async mountImages(step: Extract<Step, { type: "mount_images" }>): Promise<void> {
    const discarded: ContainerId[] = [];
    const results = await Promise.all(
      step.jobs.map(async (job) => {
        try {
          if (job.discard) {
            await this.o.discardPrepared(job.container);
            discarded.push(job.container);
          }
          if (step.kind === "mount") {
            const handle = await this.mount(job.container, job.pkg);
            this.o.log.info({ container: job.container, method: handle.method }, "mounted");
            return { container: job.container, handle };
          }
          await this.unmount(job.handle!);
          this.o.log.info({ container: job.container }, "unmounted");
          return { container: job.container };
        } catch (e) {
          this.o.log.warn({ container: job.container, err: e }, `${step.kind} failed`);
          return { container: job.container, error: wireError(e, job.container) };
        }
      }),
    );
    await this.o.report({
      type: "mounted",
      kind: step.kind,
      results,
      discarded,
      immediate: step.immediate,
      reply: step.reply,
    });
  }

  async uninstall(step: Extract<Step, { type: "uninstall_package" }>): Promise<void> {
    try {
      // Resolved first: a name that cannot be a directory under data_dir fails the uninstall
      // before anything is removed.
      const persist = step.wipe ? this.persistDir(step.pkg.npk.manifest.name) : undefined;
      if (step.mount) await this.unmount(step.mount);
      await rm(step.pkg.npk.path, { force: true });
      if (persist !== undefined) await rm(persist, { recursive: true, force: true });
      this.o.log.info({ container: step.container, wipe: step.wipe }, "uninstalled");
      await this.o.report({ type: "uninstalled", container: step.container, reply: step.reply });
    } catch (e) {
      await this.o.report({
        type: "uninstalled",
        container: step.container,
        error: (e as Error).message,
        reply: step.reply,
      });
    }
  }
}

/** Maps an internal failure to the console's error variants. */
export function wireError(e: unknown, container: ContainerId): WireError {
  if (e instanceof NpkError)
    return { type: "invalid_arguments", cause: `${container}: ${e.kind}: ${e.message}` };
  return { type: "unexpected", error: `${container}: ${(e as Error).message}` };
}
