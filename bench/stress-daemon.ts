/**
 * The daemon under stress: a real `skiffd` process on a temporary state directory with its own
 * cgroup name, metrics on 127.0.0.1 (ephemeral port), and the stress packages. It can be
 * killed with SIGKILL and started again on the same state. At the end it finds what the
 * daemon left behind (mounts, loop devices, cgroups, monitor processes, state files) and
 * removes everything the run created: by path under its own directory, by its own cgroup name,
 * and processes by pid when their command line names that directory.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  access,
  chmod,
  copyFile,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  rmdir,
  symlink,
  writeFile,
} from "node:fs/promises";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { pack } from "../src/npk/pack.js";
import { PACKAGE_ROOT, SKIFFD } from "../test/helpers/daemon.js";

export const EXAMPLE_BUILD = join(PACKAGE_ROOT, "examples/build");
const EXAMPLE_KEY = join(PACKAGE_ROOT, "examples/keys/skiff-example.key");
const EXAMPLE_PUB = join(PACKAGE_ROOT, "examples/keys/skiff-example.pub");
const APPLETS = ["sh", "sleep", "echo", "cat"];
/** Daemon log lines kept for a failure report. */
const LOG_TAIL_LINES = 200;
/** The daemon's own errors, counted by message; at most this many distinct messages. */
const MAX_LOGGED_ERROR_KINDS = 200;

/**
 * A stress instance appends one line to its persist directory before anything else: the
 * ground truth of "this instance ran", whatever the notifications said. Then it sleeps
 * STRESS_SLEEP seconds and exits with STRESS_CODE.
 */
const STRESS_MANIFEST = (name: string): string => `name: ${name}
version: 0.0.1
init: /bin/sh
args: ["-c", "echo run >> /data/runs; sleep \${STRESS_SLEEP:-3600}; exit \${STRESS_CODE:-0}"]
uid: 1000
gid: 1000
io:
  stdout: discard
  stderr: discard
mounts:
  /dev:
    type: dev
  /proc:
    type: proc
  /data:
    type: persist
`;

export interface DaemonSample {
  rssBytes: number;
  fds: number;
}

export interface LoopDelayReading {
  maxMs: number;
  /** The longest gap in the last 10 to 20 s. */
  recentMaxMs: number;
  p99Ms: number;
  resolutionMs: number;
}

export interface Leaks {
  mounts: string[];
  loopDevices: string[];
  cgroups: string[];
  /** Processes other than the daemon whose command line names the run's directory (monitors). */
  processes: { pid: number; cmdline: string }[];
  /** Files left in run_dir (bundles, runtime state, sockets). */
  runFiles: string[];
  /** Monitor sockets left in the instances' state directories. */
  monitorSockets: string[];
}

export class StressDaemon {
  readonly cgroup: string;
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private metricsPort: number | undefined;
  private logTail: string[] = [];
  /** Warning, error and fatal lines the daemon logged, by level and message. */
  readonly loggedErrors = new Map<string, number>();
  /** Exits of skiffd that the harness did not cause. */
  unexpectedExits = 0;
  private expectingExit = false;
  /** How the last skiffd process ended ("exit code 0", "SIGKILL"). */
  lastExit = "";
  /** Whether the last skiffd process logged "shutdown complete" (the end of an orderly shutdown). */
  shutdownCompleted = false;
  /** Stress package files by container id. */
  readonly stressPackages = new Map<string, string>();

  private constructor(readonly dir: string) {
    this.cgroup = `skiff-stress-${randomBytes(4).toString("hex")}`;
  }

  static async create(): Promise<StressDaemon> {
    return new StressDaemon(await mkdtemp(join(tmpdir(), "skiff-stress-")));
  }

  get socketPath(): string {
    return join(this.dir, "skiff.sock");
  }
  get url(): string {
    return `unix://${this.socketPath}`;
  }
  get dataDir(): string {
    return join(this.dir, "state/data");
  }
  get pid(): number | undefined {
    return this.child?.exitCode === null ? this.child.pid : undefined;
  }
  get running(): boolean {
    return this.pid !== undefined;
  }

  /** Packs `count` stress containers signed with the example key; returns their ids. */
  async packStressContainers(count: number): Promise<string[]> {
    const root = join(this.dir, "stress-root");
    await mkdir(join(root, "bin"), { recursive: true });
    await mkdir(join(root, "data"));
    await copyFile("/bin/busybox", join(root, "bin/busybox"));
    await chmod(join(root, "bin/busybox"), 0o755);
    for (const applet of APPLETS) await symlink("busybox", join(root, "bin", applet));
    const out = join(this.dir, "packages");
    await mkdir(out);
    const manifestPath = join(this.dir, "stress.yaml");
    await writeFile(manifestPath, STRESS_MANIFEST(`stress-${this.cgroup.slice(-8)}`));
    const files = await pack({ manifestPath, rootDir: root, keyPath: EXAMPLE_KEY, out, clones: count });
    for (const file of files) {
      const base = file.slice(out.length + 1, -".npk".length);
      const at = base.lastIndexOf("-");
      this.stressPackages.set(`${base.slice(0, at)}:${base.slice(at + 1)}`, file);
    }
    await rm(root, { recursive: true, force: true });
    return [...this.stressPackages.keys()];
  }

  private async writeConfig(): Promise<string> {
    const path = join(this.dir, "skiffd.toml");
    await mkdir(join(this.dir, "repo"), { recursive: true });
    await writeFile(
      path,
      `state_dir = "${this.dir}/state"
cgroup = "${this.cgroup}"
notification_buffer_size = 4096
console.main.url = "${this.url}"
console.main.permissions = "full"
metrics.url = "tcp://127.0.0.1:0"
repositories.default.type = "fs"
repositories.default.dir = "${this.dir}/repo"
repositories.default.key = "${EXAMPLE_PUB}"
repositories.default.capacity_num = 256
repositories.default.capacity_size = "4G"
debug.log_level = "info"
`,
    );
    return path;
  }

  /** Starts skiffd and waits for its console socket and metrics port (at most 20 s). */
  async start(): Promise<void> {
    const config = await this.writeConfig();
    await rm(this.socketPath, { force: true });
    this.metricsPort = undefined;
    this.expectingExit = false;
    this.shutdownCompleted = false;
    const child = spawn(process.execPath, [SKIFFD, "--config", config], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    this.child = child;
    // "close": the process exited and its stderr is read to the end (its last log lines count).
    this.exited = new Promise((resolve) =>
      child.once("close", (code, signal) => {
        this.lastExit = signal ?? `exit code ${code}`;
        if (!this.expectingExit) this.unexpectedExits++;
        resolve();
      }),
    );
    let partial = "";
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk: string) => {
      const lines = (partial + chunk).split("\n");
      partial = lines.pop()!;
      if (partial.length > 1 << 16) partial = ""; // a runaway line: keep memory bounded
      for (const line of lines) this.onLogLine(line);
    });
    const deadline = Date.now() + 20_000;
    for (;;) {
      const ready =
        this.metricsPort !== undefined &&
        (await access(this.socketPath).then(
          () => true,
          () => false,
        ));
      if (ready) return;
      if (child.exitCode !== null || Date.now() > deadline) {
        throw new Error(
          `skiffd did not start (exit ${child.exitCode}):\n${this.logTail.slice(-30).join("\n")}`,
        );
      }
      await sleep(10);
    }
  }

  private onLogLine(line: string): void {
    this.logTail.push(line);
    if (this.logTail.length > LOG_TAIL_LINES) this.logTail.shift();
    if (line.includes('"msg":"shutdown complete"')) this.shutdownCompleted = true;
    const port = /metrics on http:\/\/127\.0\.0\.1:(\d+)\/metrics/.exec(line);
    if (port) this.metricsPort = Number(port[1]);
    let entry: { level?: number; msg?: string };
    try {
      entry = JSON.parse(line) as { level?: number; msg?: string };
    } catch {
      return;
    }
    const level = entry.level ?? 0;
    if (level < 40) return;
    const msg = `${level >= 60 ? "fatal" : level >= 50 ? "error" : "warn"}: ${String(entry.msg ?? "?").slice(0, 120)}`;
    if (this.loggedErrors.has(msg) || this.loggedErrors.size < MAX_LOGGED_ERROR_KINDS) {
      this.loggedErrors.set(msg, (this.loggedErrors.get(msg) ?? 0) + 1);
    }
  }

  get recentLog(): string {
    return this.logTail.slice(-30).join("\n");
  }

  /** kill -9: monitors and containers stay behind, as after a crash. */
  async kill9(): Promise<void> {
    if (!this.running) return;
    this.expectingExit = true;
    this.child!.kill("SIGKILL");
    await this.exited;
  }

  /** SIGTERM (an orderly shutdown), then SIGKILL after `graceMs`. Resolves when it exited. */
  async stop(graceMs = 60_000): Promise<"clean" | "killed"> {
    if (!this.running) return "clean";
    this.expectingExit = true;
    this.child!.kill("SIGTERM");
    const timedOut = await Promise.race([
      this.exited.then(() => false),
      sleep(graceMs, undefined, { ref: false }).then(() => true),
    ]);
    if (!timedOut) return "clean";
    this.child!.kill("SIGKILL");
    await this.exited;
    return "killed";
  }

  /** Waits until skiffd exits by itself (resolves at once when it is not running). */
  get exitedPromise(): Promise<void> {
    return this.exited;
  }

  /** RSS and open fds of the daemon now; undefined when it is not running. */
  async sample(): Promise<DaemonSample | undefined> {
    const pid = this.pid;
    if (pid === undefined) return undefined;
    try {
      const status = await readFile(`/proc/${pid}/status`, "utf8");
      const rss = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN) * 1024;
      const fds = (await readdir(`/proc/${pid}/fd`)).length;
      return { rssBytes: rss, fds };
    } catch {
      return undefined; // it exited meanwhile
    }
  }

  /** The loop delay figures of the running daemon, from its metrics endpoint (2 s timeout). */
  async loopDelay(): Promise<LoopDelayReading | undefined> {
    const port = this.metricsPort;
    if (port === undefined || !this.running) return undefined;
    const body = await httpGet(port, "/metrics", 2000).catch(() => undefined);
    if (body === undefined) return undefined;
    const value = (name: string): number => {
      const m = new RegExp(`^${name.replace(/[{}"=.]/g, "\\$&")} (\\S+)$`, "m").exec(body);
      return m ? Number(m[1]) * 1000 : Number.NaN;
    };
    return {
      maxMs: value("skiff_event_loop_delay_max_seconds"),
      recentMaxMs: value("skiff_event_loop_delay_recent_max_seconds"),
      p99Ms: value('skiff_event_loop_delay_seconds{quantile="0.99"}'),
      resolutionMs: value("skiff_event_loop_delay_resolution_seconds"),
    };
  }

  /** What the stopped daemon left behind. Call after `stop()`. */
  async findLeaks(): Promise<Leaks> {
    const mounts = (await readFile("/proc/self/mountinfo", "utf8"))
      .split("\n")
      .map((line) => line.split(" ")[4] ?? "")
      .filter((point) => point.startsWith(this.dir));
    const loopDevices: string[] = [];
    for (const dev of await readdir("/sys/block").catch(() => [] as string[])) {
      if (!dev.startsWith("loop")) continue;
      const backing = await readFile(`/sys/block/${dev}/loop/backing_file`, "utf8").catch(() => "");
      if (backing.startsWith(this.dir)) loopDevices.push(`/dev/${dev}`);
    }
    const cgroups: string[] = [];
    for (const controller of await readdir("/sys/fs/cgroup").catch(() => [] as string[])) {
      const root = join("/sys/fs/cgroup", controller, this.cgroup);
      if (await exists(root)) cgroups.push(...(await cgroupTree(root)));
    }
    const runFiles = await listFiles(join(this.dir, "state/run"));
    const monitorSockets = (await listFiles(join(this.dir, "state/log/containers"))).filter((f) =>
      f.endsWith("/monitor.sock"),
    );
    return { mounts, loopDevices, cgroups, processes: await this.ownProcesses(), runFiles, monitorSockets };
  }

  /** Processes whose command line names this run's directory (monitors, runtimes), not the daemon. */
  private async ownProcesses(): Promise<{ pid: number; cmdline: string }[]> {
    const found: { pid: number; cmdline: string }[] = [];
    for (const entry of await readdir("/proc")) {
      if (!/^\d+$/.test(entry) || Number(entry) === this.pid || Number(entry) === process.pid) continue;
      const cmdline = await readFile(`/proc/${entry}/cmdline`, "utf8").catch(() => "");
      if (cmdline.includes(this.dir))
        found.push({ pid: Number(entry), cmdline: cmdline.replaceAll("\0", " ").trim() });
    }
    return found;
  }

  /** Removes everything the run created, whatever the daemon left. Never throws. */
  async cleanup(): Promise<void> {
    if (this.running) await this.stop(10_000).catch(() => undefined);
    for (const { pid } of await this.ownProcesses().catch(() => [])) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // gone already
      }
    }
    const leaks = await this.findLeaks().catch(() => undefined);
    // Processes of the run's containers: everything in its own (uniquely named) cgroups.
    for (const group of leaks?.cgroups ?? []) {
      const procs = await readFile(join(group, "cgroup.procs"), "utf8").catch(() => "");
      for (const pid of procs.split("\n").filter(Boolean)) {
        try {
          process.kill(Number(pid), "SIGKILL");
        } catch {
          // gone already
        }
      }
    }
    await sleep(200);
    for (const point of [...(leaks?.mounts ?? [])].reverse()) await run("umount", ["-l", point]);
    for (const dev of leaks?.loopDevices ?? []) await run("losetup", ["-d", dev]);
    for (const group of [...(leaks?.cgroups ?? [])].sort((a, b) => b.length - a.length)) {
      await rmdir(group).catch(() => undefined);
    }
    await rm(this.dir, { recursive: true, force: true }).catch(() => undefined);
  }
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/** A cgroup directory and every cgroup below it, parents first. */
async function cgroupTree(root: string): Promise<string[]> {
  const out = [root];
  for (const entry of await readdir(root, { withFileTypes: true }).catch(() => [])) {
    if (entry.isDirectory()) out.push(...(await cgroupTree(join(root, entry.name))));
  }
  return out;
}

/** Files (not directories) below `dir`, as paths; [] when it does not exist. Bounded to 10000. */
async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const entry of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      if (out.length >= 10_000) return;
      const path = join(d, entry.name);
      if (entry.isDirectory()) await walk(path);
      else out.push(path);
    }
  };
  await walk(dir);
  return out;
}

function run(command: string, args: string[]): Promise<void> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: "ignore" });
    child.once("exit", () => resolve());
    child.once("error", () => resolve());
  });
}

function httpGet(port: number, path: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, timeout: timeoutMs }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk));
      res.on("end", () =>
        res.statusCode === 200 ? resolve(body) : reject(new Error(`HTTP ${res.statusCode}`)),
      );
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end();
  });
}
