/**
 * The CRI streaming server end to end: a real skiffd (in process) running the httpd example
 * under runc, the CRI endpoint started with the streaming server (startCri, as the daemon will)
 * and the daemon's exec machinery, a gRPC client from the vendored proto, and the tests' SPDY
 * client (streaming-client.ts) on the URLs it answers. Port-forward goes into a network
 * namespace the test makes with `unshare --net=FILE`, with a server in it started by `nsenter`.
 * Until CRI containers and pods exist, the lookups map test ids to the Skiff container and the
 * namespace file.
 */
import assert from "node:assert/strict";
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { credentials, status, type Client, type ServiceError } from "@grpc/grpc-js";
import { pino } from "pino";
import { connect } from "../../../src/client/index.js";
import { testPodNetwork } from "./pods-network.js";
import { startCri } from "../../../src/cri/index.js";
import { loadCriServices } from "../../../src/cri/proto.js";
import type { CriServer } from "../../../src/cri/server.js";
import type { StreamingLookup } from "../../../src/cri/streaming/backend.js";
import { execStarterOf } from "../../../src/cri/streaming/daemon-exec.js";
import { StreamingServer } from "../../../src/cri/streaming/server.js";
import { encode } from "../../../src/cri/streaming/spdy.js";
import { detectLayout } from "../../../src/daemon/cgroups/index.js";
import { ExecExecutor } from "../../../src/daemon/exec/executor.js";
import { nativeBinary } from "../../../src/daemon/monitor/native.js";
import { detectOciRuntime } from "../../../src/daemon/oci/runtime.js";
import { PACKAGE_ROOT, startInProcessDaemon, type TestDaemon } from "../../helpers/daemon.js";
import { waitFor, within } from "../../helpers/wait.js";
import { execSession, headers, readAll, upgrade, type Upgraded } from "./streaming-client.js";

const WAIT_MS = 30_000;
const HTTPD = join(PACKAGE_ROOT, "examples/build/httpd-0.0.1.npk");
const CONTAINER = "httpd:0.0.1";
const POD = "pod-streaming-test";

type Message = Record<string, unknown>;
type Session = Extract<Upgraded, { status: 101 }>;

let daemon: TestDaemon;
const network = testPodNetwork();
let cri: CriServer;
let client: Client;
let executor: ExecExecutor;
let netns: string;
let echoServer: ChildProcess | undefined;
const ECHO_PORT = 7777;

function call(name: string, request: Message): Promise<Message> {
  const fn = (client as unknown as Record<string, (...a: unknown[]) => unknown>)[name]!.bind(client);
  return new Promise((resolve, reject) => {
    fn(request, { deadline: Date.now() + WAIT_MS * 2 }, (e: ServiceError | null, r: Message) =>
      e ? reject(e) : resolve(r),
    );
  });
}

async function refusal(promise: Promise<unknown>): Promise<ServiceError> {
  try {
    await promise;
  } catch (e) {
    return e as ServiceError;
  }
  assert.fail("the call succeeded");
}

const lookup: StreamingLookup = {
  container: (id) => {
    if (id === "cri-httpd") {
      const phase = daemon.runtime.owner.state.containers.get(CONTAINER)?.process?.phase;
      const path = join(daemon.runtime.config.logDir, "containers", "httpd", "container.log");
      return { skiffId: CONTAINER, running: phase === "running", log: { path, format: "monitor" as const } };
    }
    if (id === "cri-stopped") return { skiffId: "nothing:1.0.0", running: false };
    return undefined;
  },
  podNetns: (id) => (id === POD ? netns : undefined),
};

async function execUrl(request: Message): Promise<string> {
  return (await call("Exec", { container_id: "cri-httpd", ...request })).url as string;
}

before(async () => {
  assert.ok(existsSync(HTTPD), `${HTTPD} is missing: run examples/build.sh`);
  // `[cri]` without a socket: the daemon serves no endpoint; the test starts its own below.
  daemon = await startInProcessDaemon(`[repositories.mem]\ntype = "mem"\n[cri]\n${network.toml()}`);
  const admin = await connect(daemon.url);
  const npk = await readFile(HTTPD);
  await admin.install("mem", (await stat(HTTPD)).size, npk);
  await admin.start(CONTAINER);
  admin.close();
  await waitFor(() => daemon.runtime.owner.state.containers.get(CONTAINER)?.process?.phase === "running", {
    timeoutMs: WAIT_MS,
    what: "httpd to run",
  });
  const config = daemon.runtime.config;
  const layout = await detectLayout();
  const runtimePath = (await detectOciRuntime(config.runtime, layout)).path;
  const log = pino({ level: process.env.STREAM_LOG || "silent" });
  executor = new ExecExecutor({
    runDir: config.runDir,
    runtime: { path: runtimePath, root: `${config.runDir}/runc` },
    helper: nativeBinary("skiff-exec"),
    target: (id) => {
      const record = daemon.runtime.owner.state.containers.get(id);
      return record && { process: record.process, capabilities: record.pkg.npk.manifest.capabilities ?? [] };
    },
    log,
  });
  cri = await startCri({
    socket: join(daemon.dir, "cri-streaming.sock"),
    cri: config.cri,
    runtime: config.runtime,
    layout,
    cgroupRoot: config.cgroup,
    dataDir: config.dataDir,
    runtimeHealth: () => Promise.resolve({ status: "ok", problems: [] }),
    containers: { loaded: [], daemon: daemon.runtime.criDaemon() },
    streaming: { address: { host: "127.0.0.1", port: 0 }, lookup, exec: executor },
    log,
  });
  const services = loadCriServices();
  client = new services.RuntimeService(`unix:${cri.socket}`, credentials.createInsecure());

  // A network namespace held by a file, with an echo server on its loopback.
  netns = join(daemon.dir, "netns");
  await writeFile(netns, "");
  execFileSync("unshare", [`--net=${netns}`, "true"]);
  execFileSync("nsenter", [`--net=${netns}`, "ip", "link", "set", "lo", "up"]);
  echoServer = spawn(
    "nsenter",
    [
      `--net=${netns}`,
      "python3",
      "-u",
      "-c",
      `import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", ${ECHO_PORT})); s.listen(8); print("ready", flush=True)
while True:
    c, _ = s.accept()
    data = b""
    while True:
        d = c.recv(65536)
        if not d: break
        data += d
    c.sendall(b"echo:" + data); c.close()`,
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  let said = "";
  echoServer.stdout!.on("data", (d: Buffer) => (said += d.toString()));
  await waitFor(() => said.includes("ready"), {
    timeoutMs: WAIT_MS,
    what: "the echo server in the namespace",
  });
});

after(async () => {
  client?.close();
  await cri?.close();
  if (echoServer?.pid !== undefined) echoServer.kill("SIGKILL");
  if (netns !== undefined) {
    try {
      execFileSync("umount", [netns]);
    } catch {
      // not mounted: the test failed before unshare
    }
    await rm(netns, { force: true });
  }
  await daemon?.stop();
  await network.remove();
});

void describe("CRI streaming: exec", () => {
  void it("relays stdin, stdout and stderr and reports a non-zero exit as NonZeroExitCode (v4)", async () => {
    const url = await execUrl({
      cmd: ["sh", "-c", "cat; echo to-stderr >&2; exit 3"],
      stdin: true,
      stdout: true,
      stderr: true,
    });
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/exec\/[A-Za-z0-9_-]+$/);
    const result = await execSession(url, { stdin: "hello through spdy\n", stderr: true });
    assert.equal(result.stdout, "hello through spdy\n");
    assert.equal(result.stderr, "to-stderr\n");
    const st = JSON.parse(result.error) as Message;
    assert.equal(st.status, "Failure");
    assert.equal(st.reason, "NonZeroExitCode");
    assert.deepEqual((st.details as Message).causes, [{ reason: "ExitCode", message: "3" }]);
  });

  void it("carries megabytes through stdin and stdout", async () => {
    const input = randomBytes(768 * 1024).toString("base64"); // 1 MiB of text
    const result = await execSession(await execUrl({ cmd: ["cat"], stdin: true, stdout: true }), {
      stdin: input,
    });
    assert.equal(result.stdout.length, input.length);
    assert.ok(result.stdout === input, "the output is the input");
    assert.deepEqual(JSON.parse(result.error), { metadata: {}, status: "Success" });
  });

  void it("reports success as a Success status", async () => {
    const result = await execSession(await execUrl({ cmd: ["echo", "hi"], stdout: true }));
    assert.equal(result.stdout, "hi\n");
    assert.deepEqual(JSON.parse(result.error), { metadata: {}, status: "Success" });
  });

  void it("speaks the older protocols: v3 and v2 report a failure as text, success as nothing", async () => {
    for (const protocol of ["v3.channel.k8s.io", "v2.channel.k8s.io"]) {
      const failed = await execSession(await execUrl({ cmd: ["sh", "-c", "exit 7"], stdout: true }), {
        protocol,
      });
      assert.match(failed.error, /non-zero exit code: exit status 7/);
      const ok = await execSession(await execUrl({ cmd: ["true"], stdout: true }), { protocol });
      assert.equal(ok.error, "");
    }
  });

  void it("runs with a tty and applies resizes", async () => {
    const url = await execUrl({
      cmd: ["sh", "-c", 'until [ "$(busybox stty size)" = "40 100" ]; do sleep 0.1; done; echo sized'],
      stdout: true,
      tty: true,
    });
    const result = await execSession(url, { tty: true, resize: { Width: 100, Height: 40 } });
    assert.match(result.stdout, /sized/);
    assert.deepEqual(JSON.parse(result.error), { metadata: {}, status: "Success" });
  });

  void it("kills the process when the client goes away", async () => {
    const marker = "31337";
    const url = await execUrl({ cmd: ["sleep", marker], stdout: true });
    const up = (await upgrade(url, ["v4.channel.k8s.io"])) as Session;
    up.session.openStream(headers({ streamtype: "error" }));
    up.session.openStream(headers({ streamtype: "stdout" }));
    const sleepers = async (): Promise<number> => {
      let n = 0;
      for (const pid of await readdir("/proc").catch(() => [])) {
        if (!/^\d+$/.test(pid)) continue;
        const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
        if (cmdline === `sleep\0${marker}\0`) n++;
      }
      return n;
    };
    let seen = -1;
    const detail = (): string => `sleep ${marker} processes: ${seen}`;
    await waitFor(async () => (seen = await sleepers()) === 1, {
      timeoutMs: WAIT_MS,
      what: "the process to run",
      detail,
    });
    up.socket.destroy();
    await waitFor(async () => (seen = await sleepers()) === 0, {
      timeoutMs: WAIT_MS,
      what: "the process to be killed",
      detail,
    });
  });

  void it("reports a command the runtime cannot start as an InternalError status", async () => {
    const result = await execSession(await execUrl({ cmd: ["no-such-command"], stdout: true }));
    const st = JSON.parse(result.error) as Message;
    assert.equal(st.reason, "InternalError");
    assert.match(String(st.message), /no-such-command/);
  });

  void it("refuses bad Exec requests and unknown or stopped containers", async () => {
    const cases: [Message, status][] = [
      [{ container_id: "cri-httpd", cmd: ["true"] }, status.INVALID_ARGUMENT],
      [{ container_id: "cri-httpd", cmd: ["true"], tty: true, stderr: true }, status.INVALID_ARGUMENT],
      [{ container_id: "cri-httpd", cmd: [], stdout: true }, status.INVALID_ARGUMENT],
      [{ container_id: "nope", cmd: ["true"], stdout: true }, status.NOT_FOUND],
      [{ container_id: "cri-stopped", cmd: ["true"], stdout: true }, status.FAILED_PRECONDITION],
    ];
    for (const [request, code] of cases) {
      const e = await refusal(call("Exec", request));
      assert.equal(e.code, code, `${JSON.stringify(request)}: ${e.details}`);
    }
  });
});

void describe("CRI streaming: attach", () => {
  void it("follows the container's stdout and stderr as its monitor logs them", async () => {
    const { url } = (await call("Attach", { container_id: "cri-httpd", stdout: true, stderr: true })) as {
      url: string;
    };
    assert.match(url, /\/attach\//);
    const up = (await upgrade(url, ["v4.channel.k8s.io"])) as Session;
    assert.equal(up.status, 101);
    const error = up.session.openStream(headers({ streamtype: "error" }));
    error.writable.end();
    let out = "";
    let err = "";
    up.session
      .openStream(headers({ streamtype: "stdout" }))
      .readable.on("data", (d: Buffer) => (out += d.toString()));
    up.session
      .openStream(headers({ streamtype: "stderr" }))
      .readable.on("data", (d: Buffer) => (err += d.toString()));
    // Write to httpd's own stdout and stderr until the attach shows it (it starts following the
    // log once its streams are open).
    const write =
      'for p in /proc/[0-9]*; do if [ "$(cat $p/comm 2>/dev/null)" = httpd ]; then ' +
      "echo attached-out > $p/fd/1; echo attached-err > $p/fd/2; fi; done";
    await waitFor(
      async () => {
        await call("ExecSync", { container_id: "cri-httpd", cmd: ["sh", "-c", write] });
        return out.includes("attached-out\n") && err.includes("attached-err\n");
      },
      {
        timeoutMs: WAIT_MS,
        intervalMs: 200,
        what: "the attach to show httpd's output",
        detail: () => `${out}|${err}`,
      },
    );
    assert.doesNotMatch(out, /attached-err/);
    up.socket.destroy();
    await within(up.session.closed, { timeoutMs: WAIT_MS, what: "the session to close" });
  });

  void it("refuses stdin and a tty (a Skiff container has neither)", async () => {
    for (const request of [
      { container_id: "cri-httpd", stdin: true, stdout: true },
      { container_id: "cri-httpd", tty: true, stdout: true },
      { container_id: "cri-httpd" },
    ]) {
      const e = await refusal(call("Attach", request));
      assert.equal(e.code, status.INVALID_ARGUMENT, e.details);
    }
  });
});

void describe("CRI streaming: ExecSync", () => {
  void it("answers the output and the exit code", async () => {
    const r = await call("ExecSync", {
      container_id: "cri-httpd",
      cmd: ["sh", "-c", "echo out; echo err >&2; exit 4"],
      timeout: 0,
    });
    assert.equal((r.stdout as Buffer).toString(), "out\n");
    assert.equal((r.stderr as Buffer).toString(), "err\n");
    assert.equal(r.exit_code, 4);
  });

  void it("kills a command past its timeout and answers DEADLINE_EXCEEDED", async () => {
    const e = await refusal(
      call("ExecSync", { container_id: "cri-httpd", cmd: ["sleep", "1000"], timeout: 1 }),
    );
    assert.equal(e.code, status.DEADLINE_EXCEEDED, e.details);
  });

  void it("refuses an unknown container", async () => {
    const e = await refusal(call("ExecSync", { container_id: "nope", cmd: ["true"] }));
    assert.equal(e.code, status.NOT_FOUND);
  });
});

void describe("CRI streaming: port-forward", () => {
  async function forward(
    url: string,
    port: number,
    payload: string,
  ): Promise<{ data: string; error: string }> {
    const up = await upgrade(url, ["portforward.k8s.io"]);
    assert.equal(up.status, 101);
    const { session, protocol } = up as Session;
    assert.equal(protocol, "portforward.k8s.io");
    const error = session.openStream(headers({ streamtype: "error", port: String(port), requestid: "0" }));
    const errorText = readAll(error);
    error.writable.end();
    const data = session.openStream(headers({ streamtype: "data", port: String(port), requestid: "0" }));
    const reply = readAll(data);
    data.writable.end(Buffer.from(payload));
    const [d, e] = await within(Promise.all([reply, errorText]), { timeoutMs: WAIT_MS, what: "the forward" });
    session.close();
    return { data: d.toString(), error: e.toString() };
  }

  void it("carries a TCP connection to a port inside the pod's network namespace", async () => {
    const { url } = (await call("PortForward", { pod_sandbox_id: POD, port: [ECHO_PORT] })) as {
      url: string;
    };
    assert.match(url, /\/portforward\//);
    const result = await forward(url, ECHO_PORT, "ping from the host");
    assert.equal(result.data, "echo:ping from the host");
    assert.equal(result.error, "");
  });

  void it("reports a refused connection on the error stream", async () => {
    const { url } = (await call("PortForward", { pod_sandbox_id: POD, port: [] })) as { url: string };
    const result = await forward(url, ECHO_PORT + 1, "x");
    assert.match(result.error, /error forwarding port 7778 to pod pod-streaming-test: .*refused/);
  });

  void it("refuses an unknown pod", async () => {
    const e = await refusal(call("PortForward", { pod_sandbox_id: "nope", port: [80] }));
    assert.equal(e.code, status.NOT_FOUND);
  });
});

void describe("CRI streaming: tokens and hostile clients", () => {
  let server: StreamingServer;
  const target = {
    skiffId: CONTAINER,
    command: ["echo", "ok"],
    stdin: false,
    stdout: true,
    stderr: false,
    tty: false,
  };

  before(async () => {
    server = await StreamingServer.start({
      host: "127.0.0.1",
      port: 0,
      exec: execStarterOf(executor),
      nsconnect: nativeBinary("skiff-nsconnect"),
      log: pino({ level: "silent" }),
      limits: { tokenTtlMs: 200, maxTokens: 4, maxStreams: 4, maxSessions: 2, streamTimeoutMs: 60_000 },
    });
  });
  after(async () => {
    await server?.close();
  });

  /** The server still serves: a fresh URL runs an exec to its end. */
  async function stillServes(): Promise<void> {
    const result = await execSession(server.execUrl(target)!);
    assert.equal(result.stdout, "ok\n");
  }

  void it("takes a token once; an unknown or expired one is refused", async () => {
    const url = server.execUrl(target)!;
    assert.equal((await execSession(url)).stdout, "ok\n");
    assert.equal((await upgrade(url, ["v4.channel.k8s.io"])).status, 404, "used twice");
    assert.equal((await upgrade(`${server.baseUrl}/exec/unknownToken`, ["v4.channel.k8s.io"])).status, 404);
    const issued = Date.now();
    const stale = server.execUrl(target)!;
    await waitFor(() => Date.now() > issued + 250, { timeoutMs: WAIT_MS, what: "the token to expire" });
    assert.equal((await upgrade(stale, ["v4.channel.k8s.io"])).status, 404, "expired");
  });

  void it("bounds outstanding tokens", () => {
    const urls = Array.from({ length: 4 }, () => server.execUrl(target));
    assert.ok(urls.every((u) => u !== undefined));
    assert.equal(server.execUrl(target), undefined);
  });

  void it("refuses a request without the SPDY upgrade or with no common protocol, keeping the token", async () => {
    await waitFor(() => server.execUrl(target), { timeoutMs: WAIT_MS, what: "a free token slot" }).then(
      async (url) => {
        assert.equal(
          (await upgrade(url, ["v4.channel.k8s.io"], { headers: "Connection: keep-alive\r\n" })).status,
          400,
        );
        assert.equal((await upgrade(url, ["v9.channel.k8s.io"])).status, 403);
        assert.equal((await execSession(url)).stdout, "ok\n", "the token was not taken by the refusals");
      },
    );
  });

  void it("bounds sessions at once: one more is answered 503 and keeps its token", async () => {
    const open: Session[] = [];
    for (let i = 0; i < 2; i++) {
      const url = await waitFor(() => server.execUrl(target), {
        timeoutMs: WAIT_MS,
        what: "a free token slot",
      });
      const up = await upgrade(url, ["v4.channel.k8s.io"]);
      assert.equal(up.status, 101);
      open.push(up as Session);
    }
    const url = await waitFor(() => server.execUrl(target), {
      timeoutMs: WAIT_MS,
      what: "a free token slot",
    });
    assert.equal((await upgrade(url, ["v4.channel.k8s.io"])).status, 503);
    for (const s of open) s.socket.destroy();
    await Promise.all(open.map((s) => s.session.closed));
    const result = await waitFor(
      async () => {
        const up = await upgrade(url, ["v4.channel.k8s.io"]);
        if (up.status === 503) return undefined; // the server has not seen the closes yet
        return up;
      },
      { timeoutMs: WAIT_MS, what: "a session slot" },
    );
    assert.equal(result.status, 101, "the token survived the 503");
    (result as Session).socket.destroy();
  });

  /** Opens a session and sends `bytes`; resolves when the server has closed it. */
  async function hostile(send: (s: Session) => void, kind: "exec" | "portforward" = "exec"): Promise<void> {
    const url = await waitFor(
      () =>
        kind === "exec"
          ? server.execUrl(target)
          : server.portForwardUrl({ podSandboxId: POD, netns, ports: [] }),
      { timeoutMs: WAIT_MS, what: "a free token slot" },
    );
    const up = (await upgrade(url, [
      kind === "exec" ? "v4.channel.k8s.io" : "portforward.k8s.io",
    ])) as Session;
    assert.equal(up.status, 101);
    send(up);
    await within(up.session.closed, { timeoutMs: WAIT_MS, what: "the server to close the session" });
  }

  void it("closes a session on an oversized frame, bad compression, an unknown frame type or too many streams, and keeps serving", async () => {
    // A data frame announcing 16 MiB: refused from its header.
    await hostile((s) => s.session.writeRaw(Buffer.from([0, 0, 0, 1, 0, 0xff, 0xff, 0xff])));
    await stillServes();
    // A SYN_STREAM whose header block is not zlib.
    await hostile((s) => s.session.writeRaw(encode.synStream(1, Buffer.from("definitely not zlib"))));
    await stillServes();
    // A control frame of type 77.
    await hostile((s) => s.session.writeRaw(encode.raw(77, 0, Buffer.alloc(4))));
    await stillServes();
    // More streams than the limit (4) open at once: port-forward error streams awaiting their
    // data streams stay open.
    await hostile((s) => {
      for (let i = 0; i < 6; i++)
        s.session.openStream(headers({ streamtype: "error", port: "80", requestid: String(i) }));
    }, "portforward");
    await stillServes();
  });
});

/** crictl (cri-tools; not in Debian 12, scripts/build-crictl.sh builds one), when on PATH. */
const CRICTL = ["/usr/local/bin/crictl", "/usr/bin/crictl"].find((p) => existsSync(p));

void describe(
  "CRI streaming: crictl",
  { skip: CRICTL === undefined ? "crictl is not installed" : false },
  () => {
    function crictl(
      args: string[],
      input = "",
    ): Promise<{ code: number | null; stdout: string; stderr: string }> {
      const endpoint = `unix://${cri.socket}`;
      const child = spawn(CRICTL!, ["--runtime-endpoint", endpoint, "--image-endpoint", endpoint, ...args], {
        stdio: ["pipe", "pipe", "pipe"],
      });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
      child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      child.stdin.end(input);
      return within(
        new Promise((resolve) => child.once("close", (code) => resolve({ code, stdout, stderr }))),
        { timeoutMs: WAIT_MS, what: `crictl ${args.join(" ")}`, detail: () => stderr },
      );
    }

    /**
     * crictl must reach the endpoint (`crictl version`): since the `:authority` fix-up
     * (src/cri/authority.ts) an unmodified crictl 1.26 does, so a refusal is a failure, not a skip.
     */
    async function assertReachable(): Promise<void> {
      const probe = await crictl(["version"]);
      assert.equal(
        probe.code,
        0,
        `crictl cannot reach the CRI endpoint: ${probe.stderr.trim().split("\n").pop()}`,
      );
    }

    void it("crictl exec relays stdin and output and reports the command's exit code", async () => {
      await assertReachable();
      const ok = await crictl(["exec", "-i", "cri-httpd", "sh", "-c", "cat; echo done"], "from crictl\n");
      assert.equal(ok.stdout, "from crictl\ndone\n", ok.stderr);
      assert.equal(ok.code, 0);
      // crictl 1.26 reads the v4 status's exit code and says so; it then exits 1 (not the code).
      const failed = await crictl(["exec", "cri-httpd", "sh", "-c", "exit 3"]);
      assert.notEqual(failed.code, 0);
      assert.match(failed.stderr, /command terminated with exit code 3/);
      const sync = await crictl(["exec", "-s", "cri-httpd", "echo", "synced"]);
      // crictl prints ExecSync's stdout and stderr with a newline each.
      assert.match(sync.stdout, /^synced\n/, sync.stderr);
      assert.equal(sync.code, 0);
    });

    void it("crictl port-forward carries a connection into the pod's namespace", async () => {
      await assertReachable();
      const child = spawn(
        CRICTL!,
        ["--runtime-endpoint", `unix://${cri.socket}`, "port-forward", POD, `0:${ECHO_PORT}`],
        { stdio: ["ignore", "pipe", "pipe"] },
      );
      let said = "";
      child.stdout.on("data", (d: Buffer) => (said += d.toString()));
      child.stderr.on("data", (d: Buffer) => (said += d.toString()));
      try {
        const port = await waitFor(() => /Forwarding from 127\.0\.0\.1:(\d+)/.exec(said)?.[1], {
          timeoutMs: WAIT_MS,
          what: "crictl to listen",
          detail: () => said,
        });
        const { connect: tcp } = await import("node:net");
        const reply = await within(
          new Promise<string>((resolve, reject) => {
            const socket = tcp(Number(port), "127.0.0.1", () => socket.end("via crictl"));
            let got = "";
            socket.on("data", (d: Buffer) => (got += d.toString()));
            socket.on("end", () => resolve(got));
            socket.on("error", reject);
          }),
          { timeoutMs: WAIT_MS, what: "the forwarded echo", detail: () => said },
        );
        assert.equal(reply, "echo:via crictl");
      } finally {
        child.kill("SIGKILL");
      }
    });
  },
);
