/**
 * Test daemons: in-process (for tests that need the runtime's internals, such as the
 * notification hub) or as a real `skiffd` process (for the CLI). Each gets its own temporary
 * directory, removed by `stop()`.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { access, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { pino } from "pino";
import { parseConfig } from "../../src/daemon/config/load.js";
import { Runtime } from "../../src/daemon/runtime.js";

export const PACKAGE_ROOT = new URL("../../../", import.meta.url).pathname;
export const SKIFFD = join(PACKAGE_ROOT, "dist/src/daemon/main.js");
export const SKIFF = join(PACKAGE_ROOT, "dist/src/cli/main.js");

export interface TestDaemon {
  dir: string;
  /** URL of the listener named `main` (full permissions). */
  url: string;
  runtime: Runtime;
  stop(): Promise<void>;
}

/** Writes a config whose `main` listener is a Unix socket in `dir`, plus `extra` TOML. */
/** TOML appended to the test config; a function receives the daemon's directory. */
export type ExtraConfig = string | ((dir: string) => string);

export function testConfigText(dir: string, extra: ExtraConfig = ""): string {
  const more = typeof extra === "function" ? extra(dir) : extra;
  // Dotted keys, so that `extra` may start with top-level keys and add [tables] after them.
  return `state_dir = "${dir}/state"
console.main.url = "unix://${dir}/skiff.sock"
console.main.permissions = "full"
${more}`;
}

export async function startInProcessDaemon(extra: ExtraConfig = ""): Promise<TestDaemon> {
  const dir = await mkdtemp(join(tmpdir(), "skiff-test-"));
  const config = parseConfig(testConfigText(dir, extra));
  const runtime = await Runtime.start(config, pino({ level: "silent" }));
  return {
    dir,
    url: `unix://${dir}/skiff.sock`,
    runtime,
    async stop() {
      runtime.requestShutdown({ kind: "host", cause: "test done" });
      await runtime.stopped;
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface DaemonProcess {
  dir: string;
  url: string;
  child: ChildProcess;
  /** Everything the daemon logged so far. */
  log(): string;
  /** Sends SIGTERM and waits for the exit code. */
  stop(): Promise<number | null>;
}

export async function startDaemonProcess(extra: ExtraConfig = ""): Promise<DaemonProcess> {
  const dir = await mkdtemp(join(tmpdir(), "skiff-test-"));
  await writeFile(join(dir, "skiffd.toml"), testConfigText(dir, extra));
  const child = spawn(process.execPath, [SKIFFD, "--config", join(dir, "skiffd.toml")], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let log = "";
  child.stderr.on("data", (d: Buffer) => (log += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const socket = join(dir, "skiff.sock");
  for (let i = 0; ; i++) {
    if (
      await access(socket).then(
        () => true,
        () => false,
      )
    )
      break;
    if (child.exitCode !== null || i > 200) throw new Error(`skiffd did not start:\n${log}`);
    await sleep(25);
  }
  return {
    dir,
    url: `unix://${socket}`,
    child,
    log: () => log,
    async stop() {
      if (child.exitCode === null) child.kill("SIGTERM");
      const code = await exited;
      await rm(dir, { recursive: true, force: true });
      return code;
    },
  };
}
