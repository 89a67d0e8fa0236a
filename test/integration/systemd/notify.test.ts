/**
 * skiffd under systemd's notify protocol, with a real Unix datagram socket standing in for systemd
 * (bound by python3, which passes the sender's credentials like systemd's SO_PASSCRED), and its
 * log on a file named by JOURNAL_STREAM standing in for journald's stream. Where systemd is PID 1
 * a real unit runs too; elsewhere that test is skipped with the reason.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { openSync, closeSync, fstatSync, readFileSync } from "node:fs";
import { access, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { PACKAGE_ROOT, SKIFFD, testConfigText } from "../../helpers/daemon.js";
import { cleanupDaemon, testCgroupName } from "../../helpers/cleanup.js";

const WAIT_MS = 15_000;

/** Prints "PID MESSAGE" per datagram (PID from SCM_CREDENTIALS, "-" without). */
const LISTENER = `
import socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.bind(sys.argv[1])
print("bound", flush=True)
while True:
    msg, anc, flags, addr = s.recvmsg(4096, socket.CMSG_SPACE(12))
    pid = "-"
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid = str(struct.unpack("iII", data[:12])[0])
    print(pid, msg.decode(), flush=True)
`;

interface Datagram {
  pid: string;
  message: string;
}

/** A bound datagram socket and the messages it received, in order. */
class FakeSystemd {
  readonly received: Datagram[] = [];
  private waiters: (() => void)[] = [];

  private constructor(readonly child: ChildProcess) {}

  static async bind(path: string): Promise<FakeSystemd> {
    const child = spawn("python3", ["-c", LISTENER, path], { stdio: ["ignore", "pipe", "inherit"] });
    const fake = new FakeSystemd(child);
    const lines = createInterface({ input: child.stdout, crlfDelay: Infinity });
    const bound = new Promise<void>((resolve, reject) => {
      child.once("exit", (code) => reject(new Error(`the datagram listener exited with ${code}`)));
      lines.on("line", (line) => {
        if (line === "bound") return resolve();
        const space = line.indexOf(" ");
        fake.received.push({ pid: line.slice(0, space), message: line.slice(space + 1) });
        for (const wake of fake.waiters.splice(0)) wake();
      });
    });
    await withTimeout(bound, "the datagram listener to bind");
    return fake;
  }

  /** Resolves with the first received datagram (index >= from) with this message. */
  async waitFor(message: string, from = 0): Promise<{ index: number; datagram: Datagram }> {
    return withTimeout(
      (async () => {
        for (;;) {
          const index = this.received.findIndex((d, i) => i >= from && d.message === message);
          if (index >= 0) return { index, datagram: this.received[index]! };
          await new Promise<void>((resolve) => this.waiters.push(resolve));
        }
      })(),
      `${message} (received so far: ${JSON.stringify(this.received)})`,
    );
  }

  stop(): void {
    if (this.child.exitCode === null) this.child.kill("SIGTERM");
  }
}

async function withTimeout<T>(work: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), WAIT_MS);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const dirs: string[] = [];
/** Each test daemon's dir and its own cgroup name: removed whatever the test left. */
const daemons: { dir: string; cgroup: string }[] = [];
function configFor(dir: string): string {
  const cgroup = testCgroupName();
  daemons.push({ dir, cgroup });
  return testConfigText(dir, cgroup);
}
after(async () => {
  for (const daemon of daemons) await cleanupDaemon(daemon);
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

test("skiffd sends READY=1 once the console listens, WATCHDOG=1 keep-alives and STOPPING=1, as itself", async () => {
  const dir = await mkdtemp(join(tmpdir(), "skiff-systemd-"));
  dirs.push(dir);
  const fake = await FakeSystemd.bind(join(dir, "notify.sock"));
  await writeFile(join(dir, "skiffd.toml"), configFor(dir));
  // stderr on a file that JOURNAL_STREAM names: skiffd must take it for journald's stream.
  const logPath = join(dir, "skiffd.log");
  const logFd = openSync(logPath, "w");
  const st = fstatSync(logFd);
  const child = spawn(process.execPath, [SKIFFD, "--config", join(dir, "skiffd.toml")], {
    stdio: ["ignore", "ignore", logFd],
    env: {
      ...process.env,
      NOTIFY_SOCKET: join(dir, "notify.sock"),
      WATCHDOG_USEC: "200000",
      JOURNAL_STREAM: `${st.dev}:${st.ino}`,
    },
  });
  closeSync(logFd);
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  try {
    const ready = await fake.waitFor("READY=1");
    // Sent by skiff-notify in skiffd's name: NotifyAccess=main accepts it.
    assert.equal(ready.datagram.pid, String(child.pid));
    await access(join(dir, "skiff.sock")); // the console listened before READY=1
    const first = await fake.waitFor("WATCHDOG=1", ready.index + 1);
    const second = await fake.waitFor("WATCHDOG=1", first.index + 1);
    assert.equal(second.datagram.pid, String(child.pid));
    child.kill("SIGTERM");
    const stopping = await fake.waitFor("STOPPING=1", second.index + 1);
    assert.equal(stopping.datagram.pid, String(child.pid));
    assert.equal(await withTimeout(exited, "skiffd to exit"), 0);
    // Nothing after STOPPING=1: the watchdog ended with the shutdown.
    assert.deepEqual(
      fake.received.slice(stopping.index + 1).map((d) => d.message),
      [],
    );

    const lines = readFileSync(logPath, "utf8")
      .split("\n")
      .filter((l) => l.length > 0);
    assert.ok(lines.length > 0);
    for (const line of lines) assert.match(line, /^<[0-7]>\{"level":[0-9]+/, line);
    const running = lines.find((l) => l.includes('"msg":"skiffd running"'));
    assert.ok(running?.startsWith('<6>{"level":30'), `info is priority 6: ${running}`);
  } finally {
    if (child.exitCode === null) child.kill("SIGKILL");
    fake.stop();
  }
});

test("without NOTIFY_SOCKET or JOURNAL_STREAM skiffd logs plain JSON lines", async () => {
  const dir = await mkdtemp(join(tmpdir(), "skiff-systemd-"));
  dirs.push(dir);
  await writeFile(join(dir, "skiffd.toml"), configFor(dir));
  const env = { ...process.env };
  delete env.NOTIFY_SOCKET;
  delete env.JOURNAL_STREAM;
  // A JOURNAL_STREAM that names another file is not journald's stream.
  env.JOURNAL_STREAM = "1:1";
  const child = spawn(process.execPath, [SKIFFD, "--config", join(dir, "skiffd.toml")], {
    stdio: ["ignore", "ignore", "pipe"],
    env,
  });
  let log = "";
  child.stderr.on("data", (d: Buffer) => (log += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  try {
    await withTimeout(
      (async () => {
        while (!log.includes("skiffd running")) await new Promise((r) => setTimeout(r, 20));
      })(),
      "skiffd to start",
    );
    child.kill("SIGTERM");
    assert.equal(await withTimeout(exited, "skiffd to exit"), 0);
    for (const line of log.split("\n").filter((l) => l.length > 0)) assert.match(line, /^\{"level":/);
  } finally {
    if (child.exitCode === null) child.kill("SIGKILL");
  }
});

test("scripts/install-systemd.sh writes the unit with this checkout's skiffd and node", async () => {
  const dir = await mkdtemp(join(tmpdir(), "skiff-systemd-unit-"));
  dirs.push(dir);
  const run = spawnSync(
    join(PACKAGE_ROOT, "scripts/install-systemd.sh"),
    ["--unit-dir", dir, "--no-reload"],
    {
      encoding: "utf8",
    },
  );
  assert.equal(run.status, 0, run.stderr);
  const unit = readFileSync(join(dir, "skiffd.service"), "utf8");
  assert.doesNotMatch(unit, /@[A-Z]+@/);
  assert.match(unit, /^Type=notify$/m);
  assert.match(unit, /^NotifyAccess=main$/m);
  assert.match(unit, /^WatchdogSec=\d+s$/m);
  const exec = /^ExecStart=(\S+) (\S+) /m.exec(unit);
  assert.ok(exec, unit);
  assert.equal(exec[2], SKIFFD);
  await access(exec[1]!);
});

const systemdIsInit = (() => {
  try {
    return readFileSync("/proc/1/comm", "utf8").trim() === "systemd";
  } catch {
    return false;
  }
})();

test(
  "a real skiffd.service becomes active under systemd (Type=notify, WatchdogSec)",
  {
    skip: systemdIsInit
      ? false
      : "systemd is not PID 1 here (a container without an init system): the datagram test above stands in",
  },
  async () => {
    const unit = `skiff-test-${process.pid}`;
    const dir = await mkdtemp(join(tmpdir(), "skiff-systemd-unit-"));
    dirs.push(dir);
    await writeFile(join(dir, "skiffd.toml"), configFor(dir));
    const run = spawnSync(
      "systemd-run",
      [
        `--unit=${unit}`,
        "--property=Type=notify",
        "--property=NotifyAccess=main",
        "--property=WatchdogSec=5s",
        "--no-block",
        process.execPath,
        SKIFFD,
        "--config",
        join(dir, "skiffd.toml"),
      ],
      { encoding: "utf8" },
    );
    assert.equal(run.status, 0, run.stderr);
    try {
      await withTimeout(
        (async () => {
          for (;;) {
            const state = spawnSync("systemctl", ["is-active", unit], { encoding: "utf8" }).stdout.trim();
            if (state === "active") return;
            assert.ok(state === "activating" || state === "inactive", `unit state ${state}`);
            await new Promise((r) => setTimeout(r, 50));
          }
        })(),
        "the unit to become active",
      );
    } finally {
      spawnSync("systemctl", ["stop", unit]);
    }
  },
);
