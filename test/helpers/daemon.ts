/**
 * Test daemons: in-process (for tests that need the runtime's internals, such as the
 * notification hub) or as a real `skiffd` process (for the CLI). Each gets its own temporary
 * directory and its own cgroup name (`skiff-test-<pid>-<n>`); `stop()` stops it within a bound
 * and removes whatever it left (test/helpers/cleanup.ts), also after the daemon crashed.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { access, mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { parseConfig } from "../../src/daemon/config/load.js";
import { Runtime } from "../../src/daemon/runtime.js";
import { cleanupDaemon, testCgroupName } from "./cleanup.js";
import { waitFor, within } from "./wait.js";

export const PACKAGE_ROOT = new URL("../../../", import.meta.url).pathname;
export const SKIFFD = join(PACKAGE_ROOT, "dist/src/daemon/main.js");
export const SKIFF = join(PACKAGE_ROOT, "dist/cli/skiff.js");

// Generous bounds that end as soon as their condition holds (docs/testing.md: the VM lane).
const DAEMON_START_TIMEOUT_MS = 90_000;
const DAEMON_STOP_TIMEOUT_MS = 60_000;

export interface TestDaemon {
  dir: string;
  /** The daemon's cgroup name (unique to this test process and daemon). */
  cgroup: string;
  /** URL of the listener named `main` (full permissions). */
  url: string;
  runtime: Runtime;
  stop(): Promise<void>;
}

/** TOML appended to the test config; a function receives the daemon's directory. */
export type ExtraConfig = string | ((dir: string) => string);

/**
 * A config whose `main` listener is a Unix socket in `dir`, with the test cgroup name `cgroup`,
 * plus `extra` TOML.
 */
export function testConfigText(dir: string, cgroup: string, extra: ExtraConfig = ""): string {
  const more = typeof extra === "function" ? extra(dir) : extra;
  // Dotted keys, so that `extra` may start with top-level keys and add [tables] after them.
  return `state_dir = "${dir}/state"
cgroup = "${cgroup}"
console.main.url = "unix://${dir}/skiff.sock"
console.main.permissions = "full"
${more}`;
}

export async function startInProcessDaemon(extra: ExtraConfig = ""): Promise<TestDaemon> {
  const dir = await mkdtemp(join(tmpdir(), "skiff-test-"));
  const cgroup = testCgroupName();
  let runtime: Runtime;
  try {
    runtime = await Runtime.start(parseConfig(testConfigText(dir, cgroup, extra)), pino({ level: "silent" }));
  } catch (e) {
    await cleanupDaemon({ dir, cgroup });
    throw e;
  }
  return {
    dir,
    cgroup,
    url: `unix://${dir}/skiff.sock`,
    runtime,
    async stop() {
      runtime.requestShutdown({ kind: "host", cause: "test done" });
      try {
        await within(runtime.stopped, {
          timeoutMs: DAEMON_STOP_TIMEOUT_MS,
          what: "the in-process daemon to stop",
        });
      } finally {
        await cleanupDaemon({ dir, cgroup });
      }
    },
  };
}

export interface DaemonProcess {
  dir: string;
  /** The daemon's cgroup name (unique to this test process and daemon). */
  cgroup: string;
  url: string;
  child: ChildProcess;
  /** Everything the daemon logged so far. */
  log(): string;
  /**
   * Sends SIGTERM and waits for the exit code, then removes what the daemon left. A daemon still
   * running after the stop timeout is killed and the call fails.
   */
  stop(): Promise<number | null>;
}

export async function startDaemonProcess(extra: ExtraConfig = ""): Promise<DaemonProcess> {
  const dir = await mkdtemp(join(tmpdir(), "skiff-test-"));
  const cgroup = testCgroupName();
  await writeFile(join(dir, "skiffd.toml"), testConfigText(dir, cgroup, extra));
  const child = spawn(process.execPath, [SKIFFD, "--config", join(dir, "skiffd.toml")], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let log = "";
  child.stderr.on("data", (d: Buffer) => (log += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const running = (): boolean => child.exitCode === null && child.signalCode === null;
  const socket = join(dir, "skiff.sock");
  try {
    await waitFor(
      async () => {
        if (!running())
          throw new Error(
            `skiffd exited (${child.exitCode ?? child.signalCode}) before it listened:\n${log}`,
          );
        return access(socket).then(
          () => true,
          () => false,
        );
      },
      { timeoutMs: DAEMON_START_TIMEOUT_MS, what: "skiffd to create its socket", detail: () => log },
    );
  } catch (e) {
    if (running()) child.kill("SIGKILL");
    await within(exited, { timeoutMs: DAEMON_STOP_TIMEOUT_MS, what: "skiffd to die of SIGKILL" });
    await cleanupDaemon({ dir, cgroup });
    throw e;
  }
  return {
    dir,
    cgroup,
    url: `unix://${socket}`,
    child,
    log: () => log,
    async stop() {
      if (running()) child.kill("SIGTERM");
      try {
        return await within(exited, {
          timeoutMs: DAEMON_STOP_TIMEOUT_MS,
          what: "skiffd to exit after SIGTERM",
          detail: () => log.slice(-3000),
        });
      } catch (e) {
        child.kill("SIGKILL");
        await within(exited, { timeoutMs: DAEMON_STOP_TIMEOUT_MS, what: "skiffd to die of SIGKILL" });
        throw e;
      } finally {
        await cleanupDaemon({ dir, cgroup });
      }
    },
  };
}
