/**
 * A real `skiffd` process on a ContainerHarness's directory and cgroup name, under the test's
 * control: kill -9 without closing the subscriber first (what was written to its socket before
 * the crash is still read), a subscriber that reconnects after each restart with one SeenExits
 * (the client library drops repeated exits by itself) that records what it dropped, and the
 * checks for what a daemon may leave behind (mounts, loop devices, cgroups, monitors, files).
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { access, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { connect, SeenExits, type Client } from "../../../src/client/index.js";
import type { Notification } from "../../../src/protocol/messages.js";
import type { ContainerHarness } from "../../helpers/containers.js";
import { SKIFFD } from "../../helpers/daemon.js";
import { waitFor, within } from "../../helpers/wait.js";

// How long a SIGTERM-ed daemon gets to stop its containers and exit, and a SIGKILL-ed one to die.
const STOP_TIMEOUT_MS = 60_000;

/** SeenExits that keeps the repeats it made the connection drop. */
export class RecordingSeenExits extends SeenExits {
  readonly dropped: string[] = [];

  override firstTime(instance: string): boolean {
    const first = super.firstTime(instance);
    if (!first) this.dropped.push(instance);
    return first;
  }
}

/** One notification as the subscriber got it, with the daemon generation that sent it. */
export interface Received {
  generation: number;
  notification: Notification;
}

/** `waitFor` (test/helpers/wait.ts) in the argument order of this suite's tests. */
export async function waitUntil(
  what: string,
  done: () => boolean | Promise<boolean>,
  timeoutMs = 20_000,
): Promise<void> {
  await waitFor(done, { timeoutMs, what });
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

export class Skiffd {
  child: ChildProcess | undefined;
  log = "";
  subscriber: Client | undefined;
  /** Daemons started so far; notifications are tagged with it. */
  generation = 0;
  readonly seenExits = new RecordingSeenExits();
  readonly received: Received[] = [];
  /** Every skiff-monitor pid seen working for this harness (`scanMonitors`). */
  readonly monitors = new Set<number>();

  constructor(readonly h: ContainerHarness) {}

  get configPath(): string {
    return join(this.h.dir, "skiffd.toml");
  }

  get stateDir(): string {
    return join(this.h.dir, "state");
  }

  get socketPath(): string {
    return join(this.h.dir, "skiff.sock");
  }

  async writeConfig(extra = ""): Promise<void> {
    await writeFile(
      this.configPath,
      `state_dir = "${this.stateDir}"
cgroup = "${this.h.cgroup}"
console.main.url = "${this.h.url}"
console.main.permissions = "full"
repositories.default.type = "fs"
repositories.default.dir = "${this.h.dir}/repo"
${extra}`,
    );
  }

  /** Spawns skiffd, waits for its console and subscribes (a reconnect after a restart). */
  async start(): Promise<void> {
    await rm(this.socketPath, { force: true });
    const child = spawn(process.execPath, [SKIFFD, "--config", this.configPath], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    this.child = child;
    child.stderr.on("data", (d: Buffer) => (this.log += d.toString()));
    await waitUntil(
      `skiffd's console:\n${this.log.slice(-2000)}`,
      async () => {
        if (child.exitCode !== null) throw new Error(`skiffd exited:\n${this.log.slice(-3000)}`);
        return access(this.socketPath).then(
          () => true,
          () => false,
        );
      },
      15_000,
    );
    const generation = ++this.generation;
    const subscriber = await connect(this.h.url, { notifications: true, seenExits: this.seenExits });
    this.subscriber = subscriber;
    void (async () => {
      try {
        for await (const notification of subscriber.notifications())
          this.received.push({ generation, notification });
      } catch {
        // The daemon went away; the next start subscribes again.
      }
    })();
  }

  /** kill -9; waits until the process is gone and the subscriber has read all it was sent. */
  async kill9(): Promise<void> {
    const child = this.child!;
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGKILL");
    await within(exited, { timeoutMs: STOP_TIMEOUT_MS, what: "skiffd to die of SIGKILL" });
    const subscriber = this.subscriber!;
    await waitUntil("the subscriber to read to the end", () => subscriber.connection.closed, 10_000);
    // The iterator hands out what was queued before it ends.
    await new Promise((r) => setImmediate(r));
  }

  /**
   * SIGTERM (orderly shutdown); resolves with the exit code. A daemon still running after the
   * stop timeout is killed and the call fails.
   */
  async stop(): Promise<number | null> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return child?.exitCode ?? null;
    const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    child.kill("SIGTERM");
    try {
      return await within(exited, {
        timeoutMs: STOP_TIMEOUT_MS,
        what: "skiffd to exit after SIGTERM",
        detail: () => this.log.slice(-3000),
      });
    } catch (e) {
      child.kill("SIGKILL");
      await within(exited, { timeoutMs: STOP_TIMEOUT_MS, what: "skiffd to die of SIGKILL" });
      throw e;
    } finally {
      this.subscriber?.close();
    }
  }

  /** Records the pids of the skiff-monitors whose command line names this harness's directory. */
  async scanMonitors(): Promise<number[]> {
    const found: number[] = [];
    for (const p of await readdir("/proc")) {
      if (!/^\d+$/.test(p)) continue;
      const cmd = await readFile(`/proc/${p}/cmdline`, "utf8").catch(() => "");
      if (cmd.includes("skiff-monitor") && cmd.includes(this.h.dir)) found.push(Number(p));
    }
    for (const pid of found) this.monitors.add(pid);
    return found;
  }

  /** What is left of this harness: empty lists when the daemon cleaned up everything. */
  async leftovers(): Promise<Record<string, string[]>> {
    const mounts = (await readFile("/proc/self/mountinfo", "utf8"))
      .split("\n")
      .filter((l) => l.includes(this.h.dir));
    const { stdout } = await promisify(execFile)("losetup", ["-J"]).catch(() => ({ stdout: "" }));
    const loops = stdout.trim()
      ? (JSON.parse(stdout) as { loopdevices: { name: string; "back-file": string | null }[] }).loopdevices
          .filter((d) => d["back-file"]?.includes(this.h.dir))
          .map((d) => `${d.name} ${d["back-file"]}`)
      : [];
    const cgroups: string[] = [];
    for (const controller of await readdir("/sys/fs/cgroup").catch(() => [] as string[])) {
      const dir = join("/sys/fs/cgroup", controller, this.h.cgroup);
      if (
        await access(dir).then(
          () => true,
          () => false,
        )
      )
        cgroups.push(dir);
    }
    // A recorded pid counts while it is still one of this harness's monitors (pids get reused).
    const current = new Set(await this.scanMonitors());
    const monitors: string[] = [];
    for (const pid of this.monitors) {
      if (!current.has(pid)) continue;
      const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => "");
      const state = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0];
      const log = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
      monitors.push(`${pid} (${state}) ${log.replaceAll("\0", " ")}`);
    }
    const files: string[] = [];
    const containers = join(this.stateDir, "log", "containers");
    for (const name of await readdir(containers).catch(() => [] as string[])) {
      for (const f of await readdir(join(containers, name)).catch(() => [] as string[])) {
        if (["instance.json", "instance.json.tmp", "exit.json", "monitor.sock", "init.pid"].includes(f))
          files.push(join(containers, name, f));
      }
    }
    for (const f of await readdir(join(this.stateDir, "run", "bundles")).catch(() => [] as string[]))
      files.push(join(this.stateDir, "run", "bundles", f));
    return { mounts, loops, cgroups, monitors, files };
  }

  /** Best effort after a failed test: ends this harness's monitors (by recorded pid) and the daemon. */
  async forceCleanup(): Promise<void> {
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) await this.stop();
    await this.scanMonitors();
    for (const pid of this.monitors) if (alive(pid)) process.kill(pid, "SIGTERM");
    this.subscriber?.close();
  }
}
