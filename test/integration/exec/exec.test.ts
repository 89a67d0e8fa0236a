/**
 * `exec` against a real skiffd and runc: output, exact statuses, stdin, a pty through the CLI
 * under `script`, refusals, the process's end with its container and with its client, the pids
 * limit, and the Northstar dialect's blindness to it.
 */
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { exec, type ExecOptions } from "../../../src/client/exec.js";
import { RuntimeError } from "../../../src/client/errors.js";
import { FrameDecoder } from "../../../src/protocol/exec.js";
import type { ExitStatus } from "../../../src/protocol/messages.js";
import { ContainerHarness } from "../../helpers/containers.js";
import { SKIFF } from "../../helpers/daemon.js";
import { RawPeer } from "../../helpers/raw.js";

const execFileAsync = promisify(execFile);
const WAIT_MS = 20_000;

interface Ran {
  stdout: string;
  stderr: string;
  status: ExitStatus;
}

/** Waits for `condition` (polled), failing after WAIT_MS with `what`. */
async function waitUntil(condition: () => Promise<boolean> | boolean, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** Whether `pid` is gone (or a zombie about to be reaped by its supervisor). */
async function gone(pid: number): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
  } catch {
    return true;
  }
}

/** The pids cgroup of `pid` (`/proc/PID/cgroup`'s pids line, or the v2 line). */
async function pidsCgroup(pid: number): Promise<string> {
  const lines = (await readFile(`/proc/${pid}/cgroup`, "utf8")).split("\n");
  return lines.find((l) => /:pids:/.test(l)) ?? lines.find((l) => l.startsWith("0::"))!;
}

describe("exec", () => {
  let h: ContainerHarness;
  let sleeper: string;
  let limited: string;
  let idle: string;

  before(async () => {
    h = await ContainerHarness.create();
    sleeper = await h.add(h.name("exec-sleeper"), "/bin/sleep", ["1000"]);
    limited = await h.add(h.name("exec-limited"), "/bin/sleep", ["1000"], "cgroups:\n  pids:\n    max: 16\n");
    // Its console may exec; a Northstar client must not see that permission in its manifest.
    idle = await h.add(
      h.name("exec-idle"),
      "/bin/sleep",
      ["1000"],
      "console:\n  permissions: [list, exec]\n",
    );
    await h.startDaemon(
      `console.ro.url = "unix://${h.dir}/ro.sock"\nconsole.ro.permissions = ["list", "inspect"]\n`,
    );
    await h.client.start(sleeper);
    await h.waitFor((n) => n.type === "started" && n.container === sleeper);
  });

  after(async () => {
    await h.close();
  });

  async function run(
    command: string[],
    options: ExecOptions & { input?: string } = {},
    container = sleeper,
  ): Promise<Ran> {
    const session = await exec(h.url, container, command, { timeout: WAIT_MS, ...options });
    let stdout = "";
    let stderr = "";
    session.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    session.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    if (options.input !== undefined) {
      await session.write(options.input);
      session.endStdin();
    }
    const status = await session.status;
    return { stdout, stderr, status };
  }

  async function refusal(
    container: string,
    command: string[],
    options: ExecOptions = {},
  ): Promise<RuntimeError> {
    const error = await exec(h.url, container, command, { timeout: WAIT_MS, ...options }).then(
      () => assert.fail("exec was not refused"),
      (e: unknown) => e,
    );
    assert.ok(error instanceof RuntimeError, String(error));
    return error;
  }

  it("runs echo: its output and exit 0", async () => {
    assert.deepEqual(await run(["echo", "hello", "from", "exec"]), {
      stdout: "hello from exec\n",
      stderr: "",
      status: { type: "exit", code: 0 },
    });
  });

  it("reports exit code 3, and stderr apart from stdout", async () => {
    assert.deepEqual(await run(["sh", "-c", "echo out; echo err >&2; exit 3"]), {
      stdout: "out\n",
      stderr: "err\n",
      status: { type: "exit", code: 3 },
    });
  });

  it("keeps output and status of processes that end before the runtime does", async () => {
    // A process this quick can exit before `runc exec -d` itself: its zombie must wait for the
    // supervisor, and its output for the client's readers.
    for (let i = 0; i < 20; i++) {
      assert.deepEqual(await run(["sh", "-c", `echo ${i}; echo e${i} >&2; exit ${i}`]), {
        stdout: `${i}\n`,
        stderr: `e${i}\n`,
        status: { type: "exit", code: i },
      });
    }
  });

  it("delivers large output whole through back-pressure, to a reader that pauses", async () => {
    const session = await exec(h.url, sleeper, ["dd", "if=/dev/zero", "bs=65536", "count=128"], {
      timeout: WAIT_MS,
    });
    let bytes = 0;
    session.stdout.on("data", (d: Buffer) => {
      bytes += d.length;
      // A slow reader: the daemon's buffer fills and the process waits for it.
      if (bytes % (1024 * 1024) < d.length) {
        session.stdout.pause();
        setTimeout(() => session.stdout.resume(), 20);
      }
    });
    session.stderr.resume();
    assert.deepEqual(await session.status, { type: "exit", code: 0 });
    assert.equal(bytes, 128 * 65536);
  });

  it("tells a SIGKILL from exit 137", async () => {
    assert.deepEqual((await run(["sh", "-c", "kill -9 $$"])).status, { type: "signalled", signal: 9 });
    assert.deepEqual((await run(["sh", "-c", "exit 137"])).status, { type: "exit", code: 137 });
  });

  it("passes stdin through (cat), and env, cwd and user", async () => {
    assert.deepEqual(await run(["cat"], { stdin: true, input: "round\ntrip\n" }), {
      stdout: "round\ntrip\n",
      stderr: "",
      status: { type: "exit", code: 0 },
    });
    const env = await run(["sh", "-c", 'echo "$GREETING $(pwd) $(id -u):$(id -g)"'], {
      environment: { GREETING: "hi" },
      cwd: "/tmp",
      uid: 1234,
      gid: 4321,
    });
    assert.deepEqual(env, { stdout: "hi /tmp 1234:4321\n", stderr: "", status: { type: "exit", code: 0 } });
    // Without a user the process runs as the container's (the manifest's uid/gid).
    assert.equal((await run(["id", "-u"])).stdout, "1000\n");
  });

  it("gives `skiff exec -it` an interactive shell on a pty; the CLI exits with the shell's code", async () => {
    // `script` gives the CLI a terminal of its own; the shell reads its commands from it.
    const cli = `${process.execPath} ${SKIFF} -u ${h.url} exec -it ${sleeper} -- sh`;
    const child = spawn("script", ["-qec", cli, "/dev/null"], { stdio: ["pipe", "pipe", "inherit"] });
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d.toString()));
    const code = new Promise<number | null>((resolve) => child.once("exit", (c) => resolve(c)));
    try {
      // The shell's prompt means the exec stream is up; then it gets a command line.
      await waitUntil(() => /[$#] /.test(output), "the shell's prompt");
      child.stdin.write("readlink /proc/self/fd/0; exit 5\r");
      assert.equal(await code, 5, output);
      assert.match(output, /\/dev\/pts\/\d+/);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
  });

  it("prints the exact status with --json and mirrors a signal as 128+N", async () => {
    const result = await execFileAsync(process.execPath, [
      SKIFF,
      "-u",
      h.url,
      "--json",
      "exec",
      sleeper,
      "--",
      "sh",
      "-c",
      "kill -TERM $$",
    ]).then(
      () => assert.fail("expected a non-zero exit"),
      (e: { code: number; stdout: string }) => e,
    );
    assert.equal(result.code, 128 + 15);
    const last = JSON.parse(result.stdout.trim().split("\n").at(-1)!) as { status: unknown };
    assert.deepEqual(last.status, { signalled: { signal: 15 } });
  });

  it("refuses a paused container, and serves it again once resumed", async () => {
    await h.client.pause(sleeper);
    try {
      const e = await refusal(sleeper, ["true"]);
      assert.equal(e.error.type, "exec_failed");
      assert.match(e.message, /paused/);
    } finally {
      await h.client.resume(sleeper);
    }
    assert.deepEqual((await run(["true"])).status, { type: "exit", code: 0 });
  });

  it("refuses unknown and not running containers", async () => {
    assert.equal((await refusal(`nope-${h.id}:1.0.0`, ["true"])).error.type, "invalid_container");
    assert.equal((await refusal(idle, ["true"])).error.type, "stop_container_not_started");
  });

  it("refuses bad input with a clear error", async () => {
    const cases: [string[], ExecOptions, RegExp][] = [
      [[], {}, /command is empty/],
      [Array.from({ length: 2000 }, () => "x"), {}, /2000 arguments exceed the limit of 1024/],
      [["echo", "y".repeat(70_000)], {}, /over the limit of 65536/],
      [["true"], { environment: { "BAD=KEY": "v" } }, /invalid environment variable name/],
      [["true"], { environment: { BIG: "z".repeat(70_000) } }, /environment takes .* over the limit/],
      [["true"], { cwd: "relative" }, /not absolute/],
      [["true"], { uid: 4294967295 }, /uid 4294967295 is out of range/],
      [["true"], { gid: 5 }, /a gid needs a uid/],
    ];
    for (const [command, options, message] of cases) {
      const e = await refusal(sleeper, command, options);
      assert.equal(e.error.type, "invalid_arguments");
      assert.match(e.message, message);
    }
    const missing = await refusal(sleeper, ["/no/such/binary"]);
    assert.equal(missing.error.type, "exec_failed");
    assert.match(missing.message, /no such file or directory|not found/i);
    // The daemon serves on.
    assert.deepEqual((await run(["true"])).status, { type: "exit", code: 0 });
  });

  it("refuses exec on a connection subscribed to notifications", async () => {
    const response = await h.client.connection.request({
      type: "exec",
      container: sleeper,
      command: ["true"],
      environment: {},
      cwd: null,
      uid: null,
      gid: null,
      tty: false,
      stdin: false,
    });
    assert.equal(response.type, "exec");
    assert.match(JSON.stringify(response), /invalid_arguments.*subscribed to notifications/);
  });

  it("answers a broken frame with an error frame, kills the process and closes", async () => {
    const peer = await RawPeer.open(h.url);
    try {
      await peer.handshake("0.9.2", false, "skiff");
      peer.send(JSON.stringify({ request: { exec: { container: sleeper, command: ["sleep", "1000"] } } }));
      const answer = (await peer.next()) as { response: { exec: { ok: { pid: number } } } };
      const pid = answer.response.exec.ok.pid;
      peer.socket.write(Buffer.from([0x77, 0, 0, 0, 0])); // no such frame type
      const decoder = FrameDecoder.daemon();
      const frames = [];
      for (
        let chunk = await peer.reader.readChunk(65536);
        chunk !== null;
        chunk = await peer.reader.readChunk(65536)
      ) {
        decoder.push(chunk);
        for (let f = decoder.next(); f !== undefined; f = decoder.next()) frames.push(f);
      }
      assert.deepEqual(frames, [{ type: "error", message: "exec stream: unknown client frame type 119" }]);
      await waitUntil(() => gone(pid), "the exec process to be killed");
    } finally {
      peer.socket.destroy();
    }
  });

  it("ends the process when the client disconnects", async () => {
    const session = await exec(h.url, sleeper, ["sleep", "1000"], { timeout: WAIT_MS });
    assert.equal(await gone(session.pid), false);
    session.close();
    await waitUntil(() => gone(session.pid), "the exec process to end after the disconnect");
  });

  it("counts exec processes in the container's pids limit", async () => {
    await h.client.start(limited);
    await h.waitFor((n) => n.type === "started" && n.container === limited);
    const data = await h.client.inspect(limited);
    const session = await exec(h.url, limited, ["sleep", "1000"], { timeout: WAIT_MS });
    try {
      assert.equal(await pidsCgroup(session.pid), await pidsCgroup(data.process!.pid));
    } finally {
      session.kill(9);
      assert.deepEqual(await session.status, { type: "signalled", signal: 9 });
    }
    // init, the app and the exec's shell hold 3 of 16: twenty background sleeps cannot all fork.
    const r = await run(
      ["sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do sleep 100 & done"],
      {},
      limited,
    );
    assert.match(r.stderr, /can't fork|Resource temporarily unavailable/);
    await h.client.stop(limited);
  });

  it("ends exec processes with their container", async () => {
    const session = await exec(h.url, sleeper, ["sleep", "1000"], { timeout: WAIT_MS });
    const from = h.notifications.length;
    await h.client.stop(sleeper, 5);
    assert.deepEqual(await session.status, { type: "signalled", signal: 9 });
    await waitUntil(() => gone(session.pid), "the exec process to be gone");
    assert.equal((await refusal(sleeper, ["true"])).error.type, "stop_container_not_started");
    await h.client.start(sleeper);
    await h.waitFor((n) => n.type === "started" && n.container === sleeper, WAIT_MS, from);
  });

  it("is refused without the exec permission", async () => {
    const url = `unix://${h.dir}/ro.sock`;
    await assert.rejects(exec(url, sleeper, ["true"], { timeout: WAIT_MS }), /permission denied for exec/);
  });

  it("does not exist for a Northstar-dialect client", async () => {
    const peer = await RawPeer.open(h.url);
    try {
      assert.deepEqual(await peer.handshake(), { connect_ack: null });
      peer.send(JSON.stringify({ request: { exec: { container: sleeper, command: ["true"] } } }));
      // Northstar's console closes on a request it does not have, without an answer.
      assert.equal(await peer.next(), null);
      await peer.closed;
    } finally {
      peer.socket.destroy();
    }
    // A manifest's `exec` console permission is Skiff's: a Northstar client does not see it.
    assert.deepEqual((await h.client.inspect(idle)).manifest.console, { permissions: ["list", "exec"] });
    const northstar = await RawPeer.open(h.url);
    try {
      await northstar.handshake();
      northstar.send(JSON.stringify({ request: { inspect: { container: idle } } }));
      const answer = (await northstar.next()) as {
        response: { inspect: { ok: { data: { manifest: { console: unknown } } } } };
      };
      assert.deepEqual(answer.response.inspect.ok.data.manifest.console, { permissions: ["list"] });
    } finally {
      northstar.socket.destroy();
    }
  });
});
