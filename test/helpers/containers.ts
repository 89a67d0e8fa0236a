/**
 * A harness for container tests: busybox-static images packed as real NPKs, a real `skiffd`
 * process (so tests can kill -9 it and start it again on the same state), a client subscribed to
 * notifications, and helpers that wait for specific notifications. Each harness has its own
 * directory and its own cgroup name (`skiff-test-<pid>-<n>`); `close()` stops the daemon
 * (SIGTERM, then SIGKILL after a bound) and removes whatever it or its containers left, even when
 * the daemon crashed or the test removed its directory, and fails naming what it could not remove.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { access, chmod, copyFile, mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { connect, type Client } from "../../src/client/index.js";
import type { ExitStatus, Notification } from "../../src/protocol/messages.js";
import { nameOf, type ContainerId } from "../../src/protocol/container.js";
import { request } from "node:http";
import { readFreezerState, type CgroupFreezerState } from "./cgroupfs.js";
import { pack } from "../../src/npk/pack.js";
import { cleanupDaemon, testCgroupName } from "./cleanup.js";
import { SKIFFD } from "./daemon.js";
import { waitFor as waitUntil, within } from "./wait.js";

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
// A daemon stops its containers before it exits (a stubborn one gets the stop timeout): SIGTERM
// gets this long, then the daemon is killed.
const DAEMON_STOP_TIMEOUT_MS = 60_000;

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
 * QEMU TCG (the VM lane, `SKIFF_VM=1`) the runtime's `--version` can take over the health probe's
 * default 500 ms, which would refuse starts as "degraded" (it happened to runc there too): the
 * probe gets 5 s there and with crun.
 */
export function runtimeConfigLine(extraConfig: string): string {
  if (/^\s*\[runtime\]/m.test(extraConfig)) return "";
  const kind = TEST_RUNTIME === "runc" ? "" : `runtime.kind = "${TEST_RUNTIME}"\n`;
  const slow = TEST_RUNTIME === "crun" || process.env.SKIFF_VM === "1";
  return `${kind}${slow ? `runtime.probe_timeout = "5s"\n` : ""}`;
}

export class ContainerHarness {
  readonly id = randomBytes(3).toString("hex");
  readonly cgroup = testCgroupName();
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
    await waitUntil(
      async () => {
        if (child.exitCode !== null || child.signalCode !== null)
          throw new Error(
            `skiffd exited (${child.exitCode ?? child.signalCode}) before it listened:\n${this.daemonLog}`,
          );
        return access(join(this.dir, "skiff.sock")).then(
          () => true,
          () => false,
        );
      },
      {
        timeoutMs: DAEMON_START_TIMEOUT_MS,
        what: "skiffd to create its socket",
        detail: () => this.daemonLog,
      },
    );
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
    await waitUntil(async () => (await this.logLines(container)).some((l) => l.endsWith(text)), {
      timeoutMs,
      what: `a log line ending with ${JSON.stringify(text)} from ${container}`,
    });
  }

  /** Waits until the daemon's log matches `pattern`. */
  async waitForDaemonLog(pattern: RegExp, timeoutMs = 10_000): Promise<void> {
    await waitUntil(() => pattern.test(this.daemonLog), {
      timeoutMs,
      what: `the daemon to log ${String(pattern)}`,
      detail: () => this.daemonLog.slice(-3000),
    });
  }

  /** kill -9 of the daemon, leaving containers and monitors behind. */
  async killDaemon(): Promise<void> {
    const child = this.daemon!;
    this.client.close();
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGKILL");
    await within(exited, { timeoutMs: DAEMON_STOP_TIMEOUT_MS, what: "skiffd to die of SIGKILL" });
  }

  /**
   * SIGTERM and the daemon's exit code. A daemon still running after the stop timeout is killed
   * and the call fails (a shutdown that hangs is a bug the test must see).
   */
  async stopDaemon(): Promise<number | null> {
    const child = this.daemon;
    if (!child) return null;
    if (child.exitCode !== null || child.signalCode !== null) {
      this.client?.close();
      return child.exitCode;
    }
    const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    child.kill("SIGTERM");
    try {
      return await within(exited, {
        timeoutMs: DAEMON_STOP_TIMEOUT_MS,
        what: "skiffd to exit after SIGTERM",
        detail: () => this.daemonLog.slice(-3000),
      });
    } catch (e) {
      child.kill("SIGKILL");
      await within(exited, { timeoutMs: DAEMON_STOP_TIMEOUT_MS, what: "skiffd to die of SIGKILL" });
      throw e;
    } finally {
      this.client?.close();
    }
  }

  /** Waits for the daemon process to exit by itself (critical containers). */
  async daemonExited(timeoutMs = 20_000): Promise<number | null> {
    const child = this.daemon!;
    if (child.exitCode !== null) return child.exitCode;
    return within(new Promise<number | null>((r) => child.once("exit", (code) => r(code))), {
      timeoutMs,
      what: "skiffd to exit by itself",
      detail: () => this.daemonLog.slice(-3000),
    });
  }

  /**
   * Stops the daemon (SIGTERM, SIGKILL after the stop timeout), then removes what it and its
   * containers left: monitors and containers, mounts and loop devices under the harness's
   * directory, its cgroups in every hierarchy, and the directory. Fails naming what could not be
   * stopped or removed, also when the daemon had already died.
   */
  async close(): Promise<void> {
    for (const c of this.extraClients) c.close();
    let stopError: Error | undefined;
    await this.stopDaemon().catch(
      (e: unknown) => (stopError = e instanceof Error ? e : new Error(String(e))),
    );
    await cleanupDaemon({ dir: this.dir, cgroup: this.cgroup });
    if (stopError !== undefined) throw stopError;
  }
}

/**
 * Adds busybox httpd on 127.0.0.1:`port` (host network) that suspends after 1 s idle, with a
 * proxy wake channel `http` on `port + 1`: the power tests' sleeper that a request wakes.
 */
export function addIdleHttpd(h: ContainerHarness, port: number): Promise<ContainerId> {
  return h.add(
    h.name("web"),
    "/bin/httpd",
    ["-f", "-p", String(port), "-h", "/"],
    `network: host
power:
  idle_suspend_after: 1s
  proxies:
    - name: http
      listen: tcp://127.0.0.1:${port + 1}
      target: tcp://127.0.0.1:${port}
`,
  );
}

/** GET http://127.0.0.1:`port`/ and the body; fails after `timeoutMs` without an answer. */
export function httpGet(port: number, timeoutMs = 20_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path: "/", timeout: timeoutMs }, (res) => {
      let body = "";
      res.on("data", (d: Buffer) => (body += d.toString()));
      res.on("end", () => resolve(body));
    });
    req.on("timeout", () => req.destroy(new Error(`GET :${port} got no answer`)));
    req.on("error", reject);
    req.end();
  });
}

/** The container's freezer state from the kernel's files (freezer.state on v1, cgroup.events on v2). */
export function freezerStateOf(h: ContainerHarness, id: ContainerId): Promise<CgroupFreezerState> {
  return readFreezerState(`/${h.cgroup}/${nameOf(id)}`);
}
