/**
 * Executes package steps: committing uploads, mounting and unmounting images, uninstalling.
 * Each runs as a job outside the event loop and reports its result as a `job` event.
 */
import { mkdir, rename, rm, rmdir } from "node:fs/promises";
import type { Logger } from "pino";
import { resolveWithin } from "../../common/paths.js";
import type { ContainerId } from "../../protocol/container.js";
import type { RepositoryJob } from "../events/types.js";
import {
  dmNodeOf,
  findMount,
  isVerityMountSource,
  listDmDevices,
  mountImage,
  releaseStrayLoops,
  removeStaleVerityDevices,
  selinuxEnabled,
  umount,
  verityDeviceName,
  verityDeviceNumbers,
  verityNamePrefix,
  watchVerityCorruption,
  type MountHandle,
  type VerityCorruption,
} from "../mount/index.js";
import type { RepositoryStep } from "../events/steps.js";
import type { InstalledPackage, Repository } from "./repository.js";
import { bestEffort, messageOf, toWireError } from "../errors.js";

export interface PackageExecutorOptions {
  runDir: string;
  dataDir: string;
  repositories: ReadonlyMap<string, Repository>;
  /** Enqueues a job result (waits while the event queue is full). */
  report: (result: RepositoryJob) => Promise<void>;
  /** Settles once the container cleanups in flight have ended (a release waits for them). */
  cleanupsSettled: () => Promise<void>;
  /** Kernel dm-verity is usable: keyed images are mounted through it (docs/npk.md). */
  kernelVerity: boolean;
  log: Logger;
}

export class PackageExecutor {
  /** This daemon's verity device names start with it (its run_dir, hashed). */
  private readonly verityPrefix: string;
  /** Verity devices of this daemon's mounts, by device-mapper name: whose image each one is. */
  private readonly verityContainers = new Map<string, ContainerId>();
  private corruptionWatch: { stop(): void } | undefined;
  /**
   * Releases by the mount cache in flight, by container: a mount of the same image waits for
   * its release first (state/mount-cache.ts INVARIANTS). Never rejects.
   */
  private readonly releases = new Map<ContainerId, Promise<void>>();

  constructor(private readonly o: PackageExecutorOptions) {
    this.verityPrefix = verityNamePrefix(o.runDir);
  }

  /** The verity device name of a package of this daemon. */
  verityName(container: ContainerId, pkg: InstalledPackage): string {
    return verityDeviceName(this.verityPrefix, pkg.repository, container);
  }

  /** `<run_dir>/images/<name>-<version>`. */
  mountPoint(container: ContainerId): string {
    return resolveWithin(this.o.runDir, "images", container.replace(":", "-"));
  }

  /** A container's persist directory, `<data_dir>/<name>`: what `uninstall` with `wipe` removes. */
  persistDir(name: string): string {
    return resolveWithin(this.o.dataDir, name);
  }

  /** Carries out a package step; each reports its end as a job (or needs no report). */
  execute(step: RepositoryStep): void {
    switch (step.type) {
      case "commit_install":
        void this.commitInstall(step);
        return;
      case "discard_upload":
        void this.discardUpload(step.tempPath);
        return;
      case "mount_images":
        void this.mountImages(step);
        return;
      case "uninstall_package":
        void this.uninstall(step);
        return;
      case "release_images":
        this.release(step);
        return;
      default: {
        const unrouted: never = step;
        throw new Error(`unrouted package step ${JSON.stringify(unrouted)}`);
      }
    }
  }

  async commitInstall(step: Extract<RepositoryStep, { type: "commit_install" }>): Promise<void> {
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
        error: `cannot store the package: ${messageOf(e)}`,
        reply: step.reply,
      });
    }
  }

  async discardUpload(tempPath: string): Promise<void> {
    await rm(tempPath, { force: true });
  }

  /**
   * Mounts one image. Keyed repositories: through kernel dm-verity where it exists (every block
   * checked when read), else after the userspace check of the whole image (once, at mount).
   */
  async mount(container: ContainerId, pkg: InstalledPackage, signal?: AbortSignal): Promise<MountHandle> {
    // The mount cache may still be releasing this image: the mount point must be free first.
    await this.releases.get(container);
    const keyed = this.o.repositories.get(pkg.repository)?.key !== undefined;
    const kernel = keyed && this.o.kernelVerity && pkg.npk.verity !== undefined;
    if (keyed && !kernel) await (await import("../../npk/npk.js")).verifyFsImage(pkg.npk, signal);
    const target = this.mountPoint(container);
    await mkdir(target, { recursive: true, mode: 0o755 });
    try {
      const context = pkg.npk.manifest.selinux?.mount_context ?? undefined;
      if (context !== undefined && !selinuxEnabled()) {
        this.o.log.warn(
          { container },
          "selinux.mount_context: SELinux is not enabled on this host; not applied",
        );
      }
      const selinux = context !== undefined && selinuxEnabled() ? { selinuxContext: context } : {};
      if (kernel) {
        const verityName = this.verityName(container, pkg);
        const handle = await mountImage(pkg.npk, target, {
          method: "dm-verity",
          verityName,
          signal,
          ...selinux,
        });
        this.verityContainers.set(verityName, container);
        return handle;
      }
      const handle = await mountImage(pkg.npk, target, { signal, ...selinux });
      return keyed ? { ...handle, verity: "userspace" } : handle;
    } catch (e) {
      await bestEffort(this.o.log, `removing mount point ${target}`, rmdir(target));
      throw e;
    }
  }

  /** The mount a previous daemon left on this container's mount point, if any. */
  async adoptMount(container: ContainerId, pkg: InstalledPackage): Promise<MountHandle | undefined> {
    const target = this.mountPoint(container);
    const entry = await findMount(target);
    if (!entry) return undefined;
    const fsType = pkg.npk.fsImage.type;
    const verityName = this.verityName(container, pkg);
    const device = (await listDmDevices()).find((d) => d.name === verityName);
    if (device !== undefined && isVerityMountSource(entry.source, device)) {
      this.verityContainers.set(verityName, container);
      return { target, fsType, method: "dm-verity", verityDevice: verityName, verity: "kernel" };
    }
    const loop = entry.source.startsWith("/dev/loop");
    // The previous daemon checked a keyed image before mounting it, and this start did again.
    const keyed = this.o.repositories.get(pkg.repository)?.key !== undefined;
    return {
      target,
      fsType,
      method: loop ? "loop" : "file",
      ...(loop ? { loopDevice: entry.source } : {}),
      ...(keyed ? { verity: "userspace" as const } : {}),
    };
  }

  /**
   * Daemon start, after adoption: removes this daemon's verity devices that no adopted mount
   * uses and loop devices over repository files that nothing uses (what a crash left).
   */
  async removeStaleDevices(adopted: readonly MountHandle[]): Promise<void> {
    const keep = new Set(adopted.flatMap((h) => (h.verityDevice === undefined ? [] : [h.verityDevice])));
    const { removed, failed } = await removeStaleVerityDevices(this.verityPrefix, keep, this.o.runDir);
    if (removed.length > 0) this.o.log.info({ devices: removed }, "removed stale verity devices");
    for (const f of failed)
      this.o.log.error({ device: f.name }, `cannot remove stale verity device: ${f.error}`);
    const dirs = [...this.o.repositories.values()].map((r) => r.dir);
    const loops = await releaseStrayLoops(dirs);
    if (loops.length > 0) this.o.log.info({ devices: loops }, "released stray loop devices");
  }

  async unmount(handle: MountHandle): Promise<void> {
    await umount(handle);
    if (handle.verityDevice !== undefined) this.verityContainers.delete(handle.verityDevice);
    await bestEffort(this.o.log, `removing mount point ${handle.target}`, rmdir(handle.target));
  }

  /**
   * With kernel dm-verity: follows the kernel log and logs each corrupted block the kernel
   * reports against the container whose image it is (the container's read fails with EIO).
   */
  watchCorruption(): void {
    if (!this.o.kernelVerity || this.corruptionWatch !== undefined) return;
    this.corruptionWatch = watchVerityCorruption(
      (c) => void this.reportCorruption(c),
      (e) => this.o.log.warn({ err: e }, "cannot follow the kernel log for dm-verity errors"),
    );
  }

  /** Stops following the kernel log (daemon shutdown). */
  close(): void {
    this.corruptionWatch?.stop();
    this.corruptionWatch = undefined;
  }

  private async reportCorruption(c: VerityCorruption): Promise<void> {
    for (const [name, container] of this.verityContainers) {
      const node = await dmNodeOf(name);
      if (node === undefined || !(await verityDeviceNumbers(node)).includes(c.device)) continue;
      this.o.log.error(
        { container, device: name, block: c.block, kind: c.kind },
        `dm-verity: ${c.kind} block ${c.block} of the image of ${container} is corrupted; reads of it fail with EIO`,
      );
      return;
    }
    // Not one of this daemon's devices (another daemon's, or one just removed).
  }

  /**
   * The mount cache's release of unused images: after the container cleanups in flight (an
   * instance's image goes after its instance), each image is unmounted (loop device released,
   * verity device closed); reports `images_released`. The promise of each release is kept until
   * it ends, so that a mount of the same image waits for it.
   */
  private release(step: Extract<RepositoryStep, { type: "release_images" }>): void {
    const cleanups = this.o.cleanupsSettled();
    const results = step.images.map(({ container, handle }) => {
      const previous = this.releases.get(container) ?? Promise.resolve();
      const result = previous.then(async () => {
        await cleanups;
        try {
          await this.unmount(handle);
          this.o.log.info({ container }, "unused image released");
          return { container, handle };
        } catch (e) {
          return { container, handle, error: messageOf(e) };
        }
      });
      const done = result.then(() => undefined);
      this.releases.set(container, done);
      void done.finally(() => {
        if (this.releases.get(container) === done) this.releases.delete(container);
      });
      return result;
    });
    void Promise.all(results).then((r) => this.o.report({ type: "images_released", results: r }));
  }

  /** Settles once every release in flight has ended (daemon shutdown). */
  async releasesSettled(): Promise<void> {
    await Promise.all(this.releases.values());
  }

  async mountImages(step: Extract<RepositoryStep, { type: "mount_images" }>): Promise<void> {
    const results = await Promise.all(
      step.jobs.map(async (job) => {
        try {
          // Its prepared instance could not be discarded (discard_prepared): not unmounted.
          if (job.refused) return { container: job.container, error: job.refused };
          if (step.kind === "mount") {
            const handle = await this.mount(job.container, job.pkg);
            this.o.log.info(
              { container: job.container, method: handle.method, verity: handle.verity ?? "none" },
              "mounted",
            );
            return { container: job.container, handle };
          }
          await this.unmount(job.handle!);
          this.o.log.info({ container: job.container }, "unmounted");
          return { container: job.container };
        } catch (e) {
          this.o.log.warn({ container: job.container, err: e }, `${step.kind} failed`);
          return { container: job.container, error: toWireError(e, job.container) };
        }
      }),
    );
    await this.o.report({
      type: "mounted",
      kind: step.kind,
      results,
      immediate: step.immediate,
      reply: step.reply,
    });
  }

  async uninstall(step: Extract<RepositoryStep, { type: "uninstall_package" }>): Promise<void> {
    try {
      // Resolved first: a name that cannot be a directory under data_dir fails the uninstall
      // before anything is removed.
      const persist = step.wipe ? this.persistDir(step.pkg.npk.manifest.name) : undefined;
      // The package file goes before its image is unmounted: a removal the file system refuses
      // then fails the uninstall with the container still mounted and usable (the state keeps
      // its mount); unmounted first, the state would keep a mount that is gone.
      await rm(step.pkg.npk.path, { force: true });
      if (step.mount) await this.unmount(step.mount);
      // An image the mount cache is releasing is gone once the uninstall is answered.
      await this.releases.get(step.container);
      if (persist !== undefined) await rm(persist, { recursive: true, force: true });
      this.o.log.info({ container: step.container, wipe: step.wipe }, "uninstalled");
      await this.o.report({ type: "uninstalled", container: step.container, reply: step.reply });
    } catch (e) {
      await this.o.report({
        type: "uninstalled",
        container: step.container,
        error: messageOf(e),
        reply: step.reply,
      });
    }
  }
}
