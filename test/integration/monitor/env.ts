// Shared fixture for monitor integration tests: a busybox-static rootfs,
// per-container bundles based on `runc spec`, a private runc root and a
// unique absolute cgroup prefix, all removed by cleanup().
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { nativeBinary, spawnMonitor, type MonitorOptions } from "../../../src/daemon/monitor/client.js";
import type { MonitorConnection } from "../../../src/daemon/monitor/connection.js";

const BUSYBOX_APPLETS = [
  "sh",
  "sleep",
  "echo",
  "ls",
  "cat",
  "reboot",
  "poweroff",
  "kill",
  "true",
  "readlink",
];
const CGROUP_ROOT = "/sys/fs/cgroup";

export interface TestEnv {
  dir: string;
  runtimeRoot: string;
  cgroupPrefix: string;
  /** Writes <dir>/<name>/bundle/config.json running `args` through skiff-init; returns the bundle dir. */
  bundle(name: string, args: string[], patch?: (config: OciConfig) => void): string;
  /** Spawns a monitor for a fresh bundle; its state dir is <dir>/<name>/state. */
  launch(
    name: string,
    args: string[],
    options?: Partial<MonitorOptions>,
    patch?: (config: OciConfig) => void,
  ): Promise<MonitorConnection>;
  stateDir(name: string): string;
  /** True on a pure cgroup v2 host (the VM lane's guest): no v1 memory hierarchy. */
  memoryV2: boolean;
  /** Absolute memory cgroup directory (v1 memory hierarchy, else cgroup2) of cgroupsPath `<cgroupPrefix>/<path>`. */
  memoryCgroup(path: string): string;
  /** Registers a monitor started elsewhere so cleanup() stops it if a test failed. */
  adopt(monitorPid: number): void;
  /** Removes the bundle and state of a finished container. */
  forget(name: string): void;
  cleanup(): void;
}

export interface OciConfig {
  process: { args: string[]; terminal: boolean; capabilities: Record<string, string[]> };
  root: { path: string; readonly: boolean };
  mounts: { destination: string; type: string; source: string; options: string[] }[];
  linux: {
    cgroupsPath?: string;
    resources?: { memory?: { limit?: number; swap?: number; swappiness?: number } };
  };
}

function buildRootfs(dir: string): string {
  const rootfs = join(dir, "rootfs");
  for (const sub of ["bin", "proc", "dev", "sys", "tmp"]) mkdirSync(join(rootfs, sub), { recursive: true });
  copyFileSync("/bin/busybox", join(rootfs, "bin", "busybox"));
  for (const applet of BUSYBOX_APPLETS) symlinkSync("busybox", join(rootfs, "bin", applet));
  return rootfs;
}

function removeCgroupTree(path: string): void {
  let entries: string[];
  try {
    entries = readdirSync(path, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name);
  } catch {
    return;
  }
  for (const entry of entries) removeCgroupTree(join(path, entry));
  try {
    rmdirSync(path);
  } catch {
    // still populated: nothing more a test can do
  }
}

function listContainers(runtimeRoot: string): string[] {
  try {
    const out = execFileSync("runc", ["--root", runtimeRoot, "list", "--format", "json"], {
      encoding: "utf8",
    });
    return ((JSON.parse(out) as { id: string }[] | null) ?? []).map((c) => c.id);
  } catch {
    return [];
  }
}

export function createTestEnv(): TestEnv {
  const tag = randomBytes(4).toString("hex");
  const dir = join(tmpdir(), `skiff-monitor-test-${tag}`);
  mkdirSync(dir, { recursive: true });
  const rootfs = buildRootfs(dir);
  const runtimeRoot = join("/run", `skiff-test-${tag}`, "runc");
  const cgroupPrefix = `/skiff-test-${tag}`;
  const memoryV2 = !existsSync(join(CGROUP_ROOT, "memory"));
  execFileSync("runc", ["spec", "--bundle", dir]);
  const baseConfig = readFileSync(join(dir, "config.json"), "utf8");
  rmSync(join(dir, "config.json"));

  const monitorPids: number[] = [];
  const env: TestEnv = {
    dir,
    runtimeRoot,
    cgroupPrefix,
    bundle(name, args, patch) {
      const bundleDir = join(dir, name, "bundle");
      mkdirSync(bundleDir, { recursive: true });
      const config = JSON.parse(baseConfig) as OciConfig;
      config.process.args = ["/dev/.skiff/init", "--", ...args];
      config.process.terminal = false;
      config.root = { path: rootfs, readonly: true };
      config.mounts.push({
        destination: "/dev/.skiff/init",
        type: "bind",
        source: nativeBinary("skiff-init"),
        options: ["bind", "ro"],
      });
      config.linux.cgroupsPath = `${cgroupPrefix}/${name}`;
      patch?.(config);
      writeFileSync(join(bundleDir, "config.json"), JSON.stringify(config));
      return bundleDir;
    },
    stateDir: (name) => join(dir, name, "state"),
    adopt: (pid) => monitorPids.push(pid),
    forget: (name) => rmSync(join(dir, name), { recursive: true, force: true }),
    memoryV2,
    memoryCgroup: (path) =>
      memoryV2 ? join(CGROUP_ROOT, cgroupPrefix, path) : join(CGROUP_ROOT, "memory", cgroupPrefix, path),
    async launch(name, args, options = {}, patch) {
      const conn = await spawnMonitor({
        id: `${tag}-${name}`,
        bundleDir: env.bundle(name, args, patch),
        stateDir: env.stateDir(name),
        runtime: "/usr/sbin/runc",
        runtimeRoot,
        io: { stdout: "inherit", stderr: "inherit" },
        log: { maxBytes: 1 << 20, files: 2 },
        lingerMs: 10_000,
        ...options,
      });
      monitorPids.push(conn.monitorPid);
      return conn;
    },
    cleanup() {
      // After a failed test: stop our monitors, then whatever containers remain.
      for (const pid of monitorPids) {
        try {
          // Guard against pid reuse: only a process that still is a monitor.
          if (readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("skiff-monitor"))
            process.kill(pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
      for (const id of listContainers(runtimeRoot)) {
        execFileSync("runc", ["--root", runtimeRoot, "delete", "--force", id], { stdio: "ignore" });
      }
      rmSync(dir, { recursive: true, force: true });
      rmSync(join("/run", `skiff-test-${tag}`), { recursive: true, force: true });
      for (const controller of readdirSync(CGROUP_ROOT))
        removeCgroupTree(join(CGROUP_ROOT, controller, cgroupPrefix));
      if (memoryV2) removeCgroupTree(join(CGROUP_ROOT, cgroupPrefix));
    },
  };
  return env;
}

/** A memory limit without swap: a memory eater is OOM-killed instead of swapping. */
export function withMemoryLimit(bytes: number): (config: OciConfig) => void {
  return (config) => {
    config.linux.resources = {
      ...config.linux.resources,
      memory: { limit: bytes, swap: bytes, swappiness: 0 },
    };
  };
}

/** Adds CAP_SYS_BOOT so reboot(2) inside the container reaches the kernel's namespace reboot. */
export function withSysBoot(config: OciConfig): void {
  for (const set of Object.values(config.process.capabilities)) set.push("CAP_SYS_BOOT");
}
