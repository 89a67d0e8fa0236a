/**
 * The baseline for the container benchmarks: plain `runc` driven directly, on bundles whose
 * config.json is the one Skiff's daemon wrote for an equivalent container (same rootfs image,
 * same skiff-init, same mounts and namespaces), with only the arguments, the root path and the
 * cgroup path changed. Everything lives in a temporary directory, a private runc root and one
 * absolute cgroup prefix; `cleanup()` removes all three.
 */
import { execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, rmdir, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);
const CGROUP_ROOT = "/sys/fs/cgroup";

interface OciConfig {
  process: { args: string[] };
  root: { path: string };
  mounts?: { source?: string }[];
  linux: { cgroupsPath?: string };
}

export class RuncBaseline {
  private readonly runtimeRoot: string;
  private readonly cgroupPrefix = `/skiff-bench-runc-${randomBytes(3).toString("hex")}`;
  private readonly ids = new Set<string>();

  private constructor(
    private readonly dir: string,
    private readonly template: OciConfig,
  ) {
    this.runtimeRoot = join(dir, "runc");
  }

  /**
   * Takes `config.json` from a bundle the daemon wrote as the template of every bundle. Files the
   * template mounts from the bundle itself (skiff-init's copy) are copied beside the baseline's
   * bundles: the daemon removes its bundle when that instance ends.
   */
  static async fromBundle(bundleDir: string): Promise<RuncBaseline> {
    const template = JSON.parse(await readFile(join(bundleDir, "config.json"), "utf8")) as OciConfig;
    const dir = await mkdtemp(join(tmpdir(), "skiff-bench-runc-"));
    const own = join(dir, "from-bundle");
    await mkdir(own);
    for (const mount of template.mounts ?? []) {
      if (mount.source === undefined || !mount.source.startsWith(`${bundleDir}/`)) continue;
      const copy = join(own, basename(mount.source));
      await copyFile(mount.source, copy);
      mount.source = copy;
    }
    return new RuncBaseline(dir, template);
  }

  /** The root file system path of a bundle. */
  static async rootOf(bundleDir: string): Promise<string> {
    return (JSON.parse(await readFile(join(bundleDir, "config.json"), "utf8")) as OciConfig).root.path;
  }

  /** Writes a bundle running `args` under skiff-init, on `rootPath` (default: the template's). */
  async bundle(name: string, args: string[], rootPath?: string): Promise<string> {
    const config = structuredClone(this.template);
    config.process.args = ["/dev/.skiff/init", "--", ...args];
    if (rootPath !== undefined) config.root.path = rootPath;
    config.linux.cgroupsPath = `${this.cgroupPrefix}/${name}`;
    const bundleDir = join(this.dir, "bundles", name);
    await mkdir(bundleDir, { recursive: true });
    await writeFile(join(bundleDir, "config.json"), JSON.stringify(config));
    return bundleDir;
  }

  /**
   * `runc run` in the foreground, spawned at once; resolves with runc's exit code (128 + signal
   * for a container killed by a signal). runc deletes the container when it exits.
   */
  async run(id: string, bundleDir: string): Promise<number | null> {
    this.ids.add(id);
    const runc = spawn("runc", ["--root", this.runtimeRoot, "run", "--bundle", bundleDir, id], {
      stdio: "ignore",
    });
    const [code] = (await once(runc, "exit")) as [number | null];
    this.ids.delete(id);
    return code;
  }

  /** `runc run -d`: resolves once runc has started the container and exited; returns its init pid. */
  async runDetached(id: string, bundleDir: string): Promise<number> {
    this.ids.add(id);
    const pidFile = join(this.dir, `${id}.pid`);
    // Not execFile: the container inherits runc's stdio, so pipes would never reach EOF.
    const runc = spawn(
      "runc",
      [...["--root", this.runtimeRoot, "run", "-d", "--bundle", bundleDir], ...["--pid-file", pidFile, id]],
      { stdio: "ignore" },
    );
    const [code] = (await once(runc, "exit")) as [number | null];
    if (code !== 0) throw new Error(`runc run -d ${id} exited with ${code}`);
    return Number(await readFile(pidFile, "utf8"));
  }

  async kill(id: string, signal: string): Promise<void> {
    await run("runc", ["--root", this.runtimeRoot, "kill", id, signal]);
  }

  async deleteForce(id: string): Promise<void> {
    await run("runc", ["--root", this.runtimeRoot, "delete", "--force", id]);
    this.ids.delete(id);
  }

  /** Deletes any container still known, the prefix's cgroups and the directory. */
  async cleanup(): Promise<void> {
    for (const id of this.ids) await this.deleteForce(id).catch(() => undefined);
    const controllers = await readdir(CGROUP_ROOT).catch(() => [] as string[]);
    for (const controller of controllers) {
      await rmdir(join(CGROUP_ROOT, controller, this.cgroupPrefix)).catch(() => undefined);
    }
    await rm(this.dir, { recursive: true, force: true });
  }
}
