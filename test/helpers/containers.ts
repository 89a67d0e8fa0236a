/**
 * A harness for container tests: busybox-static images packed as real NPKs, a real `skiffd`
 * process (so tests can kill -9 it and start it again on the same state), a client subscribed to
 * notifications, and helpers that wait for specific notifications. Each harness has its own
 * directory and its own cgroup name, removed by `close()`.
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
  rm,
  rmdir,
  symlink,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { connect, type Client } from "../../src/client/index.js";
import type { ExitStatus, Notification } from "../../src/protocol/messages.js";
import { pack } from "../../src/npk/pack.js";
import { SKIFFD } from "./daemon.js";

const APPLETS = [
  "sh",
  "nc",
  "httpd",
  "echo",
  "cat",
  "sleep",
  "ls",
  "id",
  "kill",
  "reboot",
  "poweroff",
  "true",
  "false",
  "grep",
  "mount",
  "touch",
  "ulimit",
  "yes",
  "dd",
  "head",
  "env",
  "readlink",
  "linux32",
  "linux64",
];

/** Manifest fields every test container shares. */
const BASE = `uid: 1000
gid: 1000
mounts:
  /dev:
    type: dev
  /proc:
    type: proc
`;

// Generous waits, which end as soon as their condition holds: in the VM lane (QEMU TCG on a
// loaded 2-core host) loading the daemon's modules alone can take 10-40 s, and a container
// start (runc create and start) longer than the client's default 10 s request timeout.
const DAEMON_START_TIMEOUT_MS = 90_000;
const REQUEST_TIMEOUT_MS = 60_000;

/**
 * The OCI runtime the suite runs on: `SKIFF_TEST_RUNTIME=crun` runs every harness daemon with
 * `runtime.kind = "crun"` (the VM lane: crun refuses hybrid hosts). Unset or `runc`: the default.
 * A test that configures its own `[runtime]` table keeps it.
 */
export const TEST_RUNTIME: "runc" | "crun" = testRuntime(process.env.SKIFF_TEST_RUNTIME);

function testRuntime(value: string | undefined): "runc" | "crun" {
  if (value === undefined || value === "" || value === "runc") return "runc";
  if (value === "crun") return "crun";
  throw new Error(`SKIFF_TEST_RUNTIME must be runc or crun, not ${JSON.stringify(value)}`);
}

/**
 * The config lines that select TEST_RUNTIME, unless `extraConfig` has its own `[runtime]`. Under
 * QEMU TCG a dynamically linked crun's `--version` can take over the health probe's default
 * 500 ms, which would refuse starts as "degraded": the probe gets 5 s there.
 */
export function runtimeConfigLine(extraConfig: string): string {
  if (TEST_RUNTIME === "runc" || /^\s*\[runtime\]/m.test(extraConfig)) return "";
  return `runtime.kind = "${TEST_RUNTIME}"\nruntime.probe_timeout = "5s"\n`;
}

export class ContainerHarness {
  readonly id = randomBytes(3).toString("hex");
  readonly cgroup = `skiff-test-${this.id}`;
  private daemon: ChildProcess | undefined;
  private daemonLog = "";
  client!: Client;
  private readonly extraClients: Client[] = [];
  readonly notifications: Notification[] = [];
  private waiters: (() => void)[] = [];

  private constructor(readonly dir: string) {}

  static async create(): Promise<ContainerHarness> {
    const h = new ContainerHarness(await mkdtemp(join(tmpdir(), "skiff-ct-")));
    await mkdir(join(h.dir, "repo"));
    const root = join(h.dir, "busybox");
    await mkdir(join(root, "bin"), { recursive: true });
    await copyFile("/bin/busybox", join(root, "bin", "busybox"));
    for (const applet of APPLETS) await symlink("busybox", join(root, "bin", applet));
    await mkdir(join(root, "tmp"));
    await chmod(join(root, "tmp"), 0o1777); // mkdir's mode goes through the umask
    return h;
  }

  get url(): string {
    return `unix://${this.dir}/skiff.sock`;
  }

  /** A unique container name for this harness. */
  name(base: string): string {
    return `${base}-${this.id}`;
  }

  /**
   * Packs a busybox container: `extra` YAML is appended to name/version/init/args and the base
   * mounts; `mounts` YAML (indented two spaces) is added to the base mounts.
   */
  async add(name: string, init: string, args: string[], extra = "", mounts = ""): Promise<string> {
    const manifest = `name: ${name}\nversion: 1.0.0\ninit: ${init}\nargs: ${JSON.stringify(args)}\n${BASE}${mounts}${extra}`;
    const path = join(this.dir, `${name}.yaml`);
    await writeFile(path, manifest);
    await pack({
      manifestPath: path,
      rootDir: join(this.dir, "busybox"),
      out: join(this.dir, "repo", `${name}-1.0.0.npk`),
      compression: "none",
    });
    return `${name}:1.0.0`;
  }

  async startDaemon(extraConfig = "", args: string[] = []): Promise<void> {
    const config = `state_dir = "${this.dir}/state"
cgroup = "${this.cgroup}"
console.main.url = "${this.url}"
console.main.permissions = "full"
repositories.default.type = "fs"
repositories.default.dir = "${this.dir}/repo"
${runtimeConfigLine(extraConfig)}${extraConfig}`;
    await writeFile(join(this.dir, "skiffd.toml"), config);
    await rm(join(this.dir, "skiff.sock"), { force: true });
    const child = spawn(process.execPath, [SKIFFD, "--config", join(this.dir, "skiffd.toml"), ...args], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    this.daemon = child;
    child.stderr.on("data", (d: Buffer) => (this.daemonLog += d.toString()));
    const deadline = Date.now() + DAEMON_START_TIMEOUT_MS;
    for (;;) {
      if (
        await access(join(this.dir, "skiff.sock")).then(
          () => true,
          () => false,
        )
      )
        break;
      if (child.exitCode !== null || Date.now() > deadline)
        throw new Error(`skiffd did not start:\n${this.daemonLog}`);
      await sleep(25);
    }
    // The socket file exists from bind(2) on, a moment before listen(2): a connect in between is
    // refused. Under load the daemon can be preempted right there, so refusals are retried.
    const connectDeadline = Date.now() + 10_000;
    for (;;) {
      try {
        this.client = await connect(this.url, { notifications: true, timeout: REQUEST_TIMEOUT_MS });
        break;
      } catch (e) {
        const exit = child.exitCode ?? child.signalCode;
        const refused = /ECONNREFUSED/.test((e as Error).message);
        if (!refused || exit !== null || Date.now() > connectDeadline) {
          throw new Error(
            `cannot connect to skiffd (${exit === null ? "running" : `exited: ${exit}`}): ${(e as Error).message}\n${this.daemonLog.slice(-3000)}`,
            { cause: e },
          );
        }
        await sleep(25);
      }
    }
    void this.collect(this.client);
  }

  private async collect(client: Client): Promise<void> {
    try {
      for await (const n of client.notifications()) {
        this.notifications.push(n);
        for (const wake of this.waiters.splice(0)) wake();
      }
    } catch {
      // The connection ended (daemon stopped or killed).
    }
    for (const wake of this.waiters.splice(0)) wake();
  }

  /** Another connection to the daemon (a pending suspend holds its own connection's queue). */
  async newClient(): Promise<Client> {
    const client = await connect(this.url, { timeout: 0 });
    this.extraClients.push(client);
    return client;
  }

  get log(): string {
    return this.daemonLog;
  }

  get daemonPid(): number {
    return this.daemon!.pid!;
  }

  /** Waits for the first notification from index `from` on that matches. */
  async waitFor(match: (n: Notification) => boolean, timeoutMs = 20_000, from = 0): Promise<Notification> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.notifications.slice(from).find(match);
      if (found) return found;
      if (Date.now() > deadline) {
        throw new Error(
          `timed out waiting; notifications so far: ${JSON.stringify(this.notifications)}\n${this.daemonLog.slice(-3000)}`,
        );
      }
      await Promise.race([
        new Promise<void>((r) => this.waiters.push(r)),
        sleep(Math.min(500, deadline - Date.now())),
      ]);
    }
  }

  async waitForExit(container: string, from = 0): Promise<ExitStatus> {
    const n = await this.waitFor((x) => x.type === "exit" && x.container === container, 20_000, from);
    return (n as Extract<Notification, { type: "exit" }>).status;
  }

  exitsOf(container: string): ExitStatus[] {
    return this.notifications.flatMap((n) =>
      n.type === "exit" && n.container === container ? [n.status] : [],
    );
  }

  /** The container's log lines (`<time> <stream> <text>` without the time). */
  async logLines(container: string): Promise<string[]> {
    const { lines } = await this.client.logs(container, { lines: 1000 });
    return lines.map((l) => l.slice(l.indexOf(" ") + 1));
  }

  /** Polls the container's log until a line ends with `text`. */
  async waitForLog(container: string, text: string, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await this.logLines(container)).some((l) => l.endsWith(text))) {
      if (Date.now() > deadline)
        throw new Error(`no log line ending with ${JSON.stringify(text)} from ${container}`);
      await sleep(20);
    }
  }

  /** Waits until the daemon's log matches `pattern`. */
  async waitForDaemonLog(pattern: RegExp, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pattern.test(this.daemonLog)) {
      if (Date.now() > deadline)
        throw new Error(`the daemon never logged ${String(pattern)}:\n${this.daemonLog.slice(-3000)}`);
      await sleep(20);
    }
  }

  /** kill -9 of the daemon, leaving containers and monitors behind. */
  async killDaemon(): Promise<void> {
    const child = this.daemon!;
    const exited = new Promise((r) => child.once("exit", r));
    this.client.close();
    child.kill("SIGKILL");
    await exited;
  }

  async stopDaemon(): Promise<number | null> {
    const child = this.daemon;
    if (!child || child.exitCode !== null) return child?.exitCode ?? null;
    const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    child.kill("SIGTERM");
    const code = await exited;
    this.client.close();
    return code;
  }

  /** Waits for the daemon process to exit by itself (critical containers). */
  async daemonExited(timeoutMs = 20_000): Promise<number | null> {
    const child = this.daemon!;
    if (child.exitCode !== null) return child.exitCode;
    return Promise.race([
      new Promise<number | null>((r) => child.once("exit", (code) => r(code))),
      sleep(timeoutMs).then(() => {
        throw new Error("daemon did not exit");
      }),
    ]);
  }

  /** Stops the daemon, then removes the directory and any cgroup left under this harness's name. */
  async close(): Promise<void> {
    for (const c of this.extraClients) c.close();
    await this.stopDaemon().catch(() => undefined);
    for (const controller of await readdir("/sys/fs/cgroup").catch(() => [] as string[])) {
      await rmdir(join("/sys/fs/cgroup", controller, this.cgroup)).catch(() => undefined);
    }
    await rm(this.dir, { recursive: true, force: true }).catch(() => undefined);
  }
}
