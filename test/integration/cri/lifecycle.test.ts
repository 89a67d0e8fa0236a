/**
 * The whole kubelet-like lifecycle against one skiffd, end to end (issue 16's "Done when"): a
 * real skiffd with `[cri] socket` (its streaming server on its default loopback address), a gRPC
 * client generated from the vendored api.proto over the real Unix socket, Debian's
 * docker-registry on 127.0.0.1 holding an image with a full static busybox, and containers that
 * run through Skiff's own path. Then runtime handlers and the image policy over gRPC, and a
 * `kill -9` of a child skiffd with a pod and a running container.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { promisify } from "node:util";
import { status, type Client, type ServiceError } from "@grpc/grpc-js";
import pino from "pino";
import { loadCriServices } from "../../../src/cri/proto.js";
import { UNIMPLEMENTED } from "../../../src/cri/server.js";
import { parseConfig } from "../../../src/daemon/config/load.js";
import { Runtime } from "../../../src/daemon/runtime.js";
import { Client as SkiffClient } from "../../../src/client/index.js";
import { call, criClients, refusal, CALL_TIMEOUT_MS, type Message, type Method } from "./grpc.js";
import { testPodNetwork } from "./pods-network.js";
import { execSession, headers, readAll, upgrade, type Upgraded } from "./streaming-client.js";
import { cleanupDaemon, testCgroupName } from "../../helpers/cleanup.js";
import { SKIFFD, testConfigText } from "../../helpers/daemon.js";
import { waitFor, within } from "../../helpers/wait.js";
import { startRegistry, type Registry } from "../oci-image/fixtures.js";
import { pushBusyboxImage, type BusyboxImage } from "./busybox-image.js";

/** busybox with the applets the lifecycle runs. */
const BOX: BusyboxImage = {
  name: "e2e/box:1",
  applets: ["sh", "echo", "sleep", "cat", "mkdir", "hostname", "httpd", "wget", "touch", "ls", "nc"],
};

const run = promisify(execFile);
const WAIT_MS = 60_000;
/** The port the pod's web server listens on inside the pod. */
const WEB_PORT = 8080;

type Session = Extract<Upgraded, { status: 101 }>;

/** A TCP port free on the host's loopback right now (for the pod's host port mapping). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** The CRI log lines' texts of a file (`<time> <stream> <F|P> <text>`), stdout only. */
function stdoutLines(text: string): string[] {
  return text
    .split("\n")
    .filter((l) => l !== "")
    .map((line) => {
      const m = /^\S+ (stdout|stderr) [FP] (.*)$/.exec(line);
      assert.ok(m, `not a CRI log line: ${JSON.stringify(line)}`);
      return m;
    })
    .filter((m) => m[1] === "stdout")
    .map((m) => m[2]!);
}

function containerConfig(image: string, name: string, script: string, more: Message = {}): Message {
  return {
    metadata: { name, attempt: 0 },
    image: { image },
    command: ["/bin/sh", "-c", script],
    log_path: `${name}/0.log`,
    labels: { app: "e2e", role: name },
    ...more,
  };
}

async function statusOf(c: Client, id: string): Promise<Message> {
  return (await call(c, "ContainerStatus", { container_id: id, verbose: true })).status as Message;
}

async function infoOf(c: Client, id: string): Promise<{ skiffContainer: string; pid?: number }> {
  const answer = await call(c, "ContainerStatus", { container_id: id, verbose: true });
  return JSON.parse((answer.info as Record<string, string>).info!) as {
    skiffContainer: string;
    pid?: number;
  };
}

async function waitState(c: Client, id: string, state: string): Promise<Message> {
  return waitFor(
    async () => {
      const s = await statusOf(c, id);
      return s.state === state ? s : undefined;
    },
    { timeoutMs: WAIT_MS, what: `container ${id} to be ${state}` },
  );
}

async function waitForLine(c: Client, id: string, content: string): Promise<void> {
  const path = (await statusOf(c, id)).log_path as string;
  await waitFor(
    async () => {
      const text = await readFile(path, "utf8").catch(() => "");
      return stdoutLines(text).includes(content) ? true : undefined;
    },
    { timeoutMs: WAIT_MS, what: `${id} to log ${content}` },
  );
}

/**
 * One connection through a port-forward URL: sends `payload` (then half-closes when `halfClose`),
 * reads the data and error streams to their ends. Without the half-close, as client-go keeps its
 * side open, the target's EOF must end both.
 */
async function forward(
  url: string,
  port: number,
  payload: string,
  halfClose = true,
): Promise<{ data: string; error: string }> {
  const up = await upgrade(url, ["portforward.k8s.io"]);
  assert.equal(up.status, 101);
  const { session } = up as Session;
  const error = session.openStream(headers({ streamtype: "error", port: String(port), requestid: "0" }));
  const errorText = readAll(error);
  error.writable.end();
  const data = session.openStream(headers({ streamtype: "data", port: String(port), requestid: "0" }));
  const reply = readAll(data);
  if (halfClose) data.writable.end(Buffer.from(payload));
  else data.writable.write(Buffer.from(payload));
  const [d, e] = await within(Promise.all([reply, errorText]), { timeoutMs: WAIT_MS, what: "the forward" });
  session.close();
  return { data: d.toString(), error: e.toString() };
}

/** The v4 status on an exec's error stream, read. */
function execStatus(error: string): { status: string; code?: number } {
  const s = JSON.parse(error) as { status: string; details?: { causes?: { message: string }[] } };
  const code = s.details?.causes?.[0]?.message;
  return { status: s.status, ...(code === undefined ? {} : { code: Number(code) }) };
}

/** Whether anything is mounted at or below `path` (namespace files of a pod). */
async function mountedBelow(path: string): Promise<boolean> {
  const mountinfo = await readFile("/proc/self/mountinfo", "utf8");
  return mountinfo.split("\n").some((l) => (l.split(" ")[4] ?? "").startsWith(path));
}

async function linkExists(name: string): Promise<boolean> {
  return run("ip", ["link", "show", "dev", name]).then(
    () => true,
    () => false,
  );
}

/** The pod's cgroup directories that exist, on any hierarchy. */
function podCgroups(cgroup: string, podId: string): string[] {
  const candidates = [
    `/sys/fs/cgroup/${cgroup}/cri/${podId}`,
    `/sys/fs/cgroup/unified/${cgroup}/cri/${podId}`,
    ...["memory", "cpu", "cpu,cpuacct", "pids", "freezer"].map(
      (h) => `/sys/fs/cgroup/${h}/${cgroup}/cri/${podId}`,
    ),
  ];
  return candidates.filter((p) => existsSync(p));
}

let work: string;
let registry: Registry;
let image: string;

before(async () => {
  work = await mkdtemp(join(tmpdir(), "skiff-cri-e2e-"));
  registry = await startRegistry(work);
  image = await pushBusyboxImage(work, registry, BOX);
});

after(async () => {
  await registry?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

void describe("CRI: a pod's whole lifecycle, as a kubelet drives it", () => {
  const net = testPodNetwork();
  let dir: string;
  let cgroup: string;
  let runtime: Runtime | undefined;
  let rt: Client;
  let img: Client;

  // Shared by the steps below, in order.
  let podId: string;
  let hostPort: number;
  let server: string;
  let worker: string;
  let stubborn: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "skiff-test-"));
    cgroup = testCgroupName();
    // runc, and a handler whose binary is not there: dead on every host.
    const toml = (d: string): string =>
      `[cri]\nsocket = "${d}/cri.sock"\n${net.toml(1)}` +
      `[cri.runtime_handlers.runc]\n[cri.runtime_handlers.broken]\nkind = "runc"\npath = "${d}/no-such-runc"\n`;
    runtime = await Runtime.start(parseConfig(testConfigText(dir, cgroup, toml)), pino({ level: "silent" }));
    ({ runtime: rt, images: img } = criClients(`${dir}/cri.sock`));
  });

  after(async () => {
    if (rt) {
      const pods = ((await call(rt, "ListPodSandbox", {}).catch(() => ({ items: [] }))).items ??
        []) as Message[];
      for (const p of pods)
        await call(rt, "RemovePodSandbox", { pod_sandbox_id: p.id }).catch(() => undefined);
      rt.close();
      img.close();
    }
    if (runtime) {
      runtime.requestShutdown({ kind: "host", cause: "test done" });
      await within(runtime.stopped, { timeoutMs: WAIT_MS, what: "the daemon to stop" });
    }
    if (dir) await cleanupDaemon({ dir, cgroup });
    await net.remove();
  });

  void it("answers every method of both services: UNIMPLEMENTED exactly for those the table names", async () => {
    const services = loadCriServices();
    const answered: string[] = [];
    for (const [service, client] of [
      ["RuntimeService", rt],
      ["ImageService", img],
    ] as const) {
      const definition = services[service].service;
      for (const [name, method] of Object.entries(definition)) {
        const fn = (client as unknown as Record<string, Method>)[name]!;
        const options = { deadline: Date.now() + CALL_TIMEOUT_MS };
        // Empty requests: every one is refused or answers harmlessly (ids "" name nothing).
        const code: status = method.responseStream
          ? await new Promise<status>((resolve) => {
              const stream = fn.call(client, {}, options) as NodeJS.EventEmitter & { cancel(): void };
              stream.once("error", (e: ServiceError) => resolve(e.code));
              stream.once("data", () => {
                stream.cancel();
                resolve(status.OK);
              });
              stream.once("end", () => resolve(status.OK));
            })
          : await call(client, name, {}).then(
              () => status.OK,
              (e: ServiceError) => e.code,
            );
        const key = `${service}/${name}`;
        assert.equal(code === status.UNIMPLEMENTED, key in UNIMPLEMENTED, `${key}: code ${code}`);
        answered.push(key);
      }
    }
    assert.ok(answered.length >= 40, answered.join(", "));
  });

  void it("pulls the image", async () => {
    const pulled = await call(img, "PullImage", { image: { image } });
    assert.match(pulled.image_ref as string, /^sha256:[0-9a-f]{64}$/);
    const listed = (await call(img, "ListImages", {})).images as Message[];
    assert.deepEqual(
      listed.map((i) => i.repo_tags),
      [[image]],
    );
  });

  void it("refuses a pod naming an unknown or a dead runtime handler, and records the handler it picks for none", async () => {
    const config = (name: string): Message => ({ metadata: { name, namespace: "e2e", uid: `uid-${name}` } });
    const unknown = await refusal(
      call(rt, "RunPodSandbox", { config: config("k"), runtime_handler: "kata" }),
    );
    assert.equal(unknown.code, status.NOT_FOUND, unknown.details);
    assert.match(unknown.details, /runtime handler "kata" is not configured/);
    const dead = await refusal(call(rt, "RunPodSandbox", { config: config("b"), runtime_handler: "broken" }));
    assert.equal(dead.code, status.FAILED_PRECONDITION, dead.details);
    assert.match(dead.details, /runtime handler broken is dead/);
    const st = await call(rt, "Status", { verbose: true });
    const conditions = ((st.status as Message).conditions as Message[]).map((c) => [c.type, c.status]);
    assert.deepEqual(conditions.slice(0, 2), [
      ["RuntimeReady", true],
      ["NetworkReady", true],
    ]);
    assert.deepEqual(
      (st.runtime_handlers as Message[]).map((h) => h.name),
      ["", "runc"],
    );
    assert.deepEqual(((await call(rt, "ListPodSandbox", {})).items as Message[]) ?? [], []);
  });

  void it("runs a pod with a port mapping, DNS, hostname and labels", async () => {
    hostPort = await freePort();
    const logDirectory = join(dir, "logs");
    const answer = await call(rt, "RunPodSandbox", {
      config: {
        metadata: { name: "web", namespace: "e2e", uid: "uid-web", attempt: 1 },
        hostname: "web-host",
        log_directory: logDirectory,
        dns_config: { servers: ["10.96.0.10"], searches: ["e2e.svc.cluster.local"], options: ["ndots:5"] },
        port_mappings: [
          { protocol: "TCP", container_port: WEB_PORT, host_port: hostPort, host_ip: "127.0.0.1" },
        ],
        labels: { app: "e2e", tier: "web" },
        annotations: { "e2e.skiff/note": "lifecycle" },
      },
      runtime_handler: "",
    });
    podId = answer.pod_sandbox_id as string;
    assert.match(podId, /^[0-9a-f]{64}$/);
    const st = (await call(rt, "PodSandboxStatus", { pod_sandbox_id: podId })).status as Message;
    assert.equal(st.state, "SANDBOX_READY");
    assert.equal(st.runtime_handler, "runc", "the handler picked for a pod that names none");
    assert.ok(((st.network as Message).ip as string).startsWith(net.prefix));
    assert.deepEqual(st.labels, { app: "e2e", tier: "web" });
  });

  void it("creates and starts three containers in the pod", async () => {
    const create = async (config: Message): Promise<string> =>
      (await call(rt, "CreateContainer", { pod_sandbox_id: podId, config, sandbox_config: {} }))
        .container_id as string;
    server = await create(
      containerConfig(
        image,
        "server",
        `mkdir -p /www && echo pong-from-pod > /www/index.html && echo serving && exec httpd -f -p ${WEB_PORT} -h /www`,
      ),
    );
    // Says a line every 0.2 s until a file appears (an exec makes it), then exits with its own code.
    worker = await create(
      containerConfig(
        image,
        "worker",
        "i=0; while [ ! -e /tmp/quit ]; do echo tick-$i; i=$((i+1)); sleep 0.2; done; echo bye; exit 3",
      ),
    );
    stubborn = await create(
      containerConfig(image, "stubborn", "trap '' TERM; echo ready; while true; do sleep 1; done"),
    );
    for (const id of [server, worker, stubborn]) {
      assert.equal((await statusOf(rt, id)).state, "CONTAINER_CREATED");
      await call(rt, "StartContainer", { container_id: id });
    }
    for (const id of [server, worker, stubborn]) await waitState(rt, id, "CONTAINER_RUNNING");
    await waitForLine(rt, server, "serving");
    await waitForLine(rt, stubborn, "ready");
  });

  void it("lists pods and containers with filters", async () => {
    const pods = async (filter: Message): Promise<string[]> =>
      (((await call(rt, "ListPodSandbox", { filter })).items as Message[]) ?? []).map((p) => p.id as string);
    assert.deepEqual(await pods({ label_selector: { tier: "web" } }), [podId]);
    assert.deepEqual(await pods({ label_selector: { tier: "db" } }), []);
    assert.deepEqual(await pods({ id: podId.slice(0, 13), state: { state: "SANDBOX_READY" } }), [podId]);
    const ctrs = async (filter: Message): Promise<string[]> =>
      ((await call(rt, "ListContainers", { filter })).containers as Message[])
        .map((c) => c.id as string)
        .sort();
    assert.deepEqual(await ctrs({ pod_sandbox_id: podId }), [server, worker, stubborn].sort());
    assert.deepEqual(await ctrs({ label_selector: { role: "worker" } }), [worker]);
    assert.deepEqual(await ctrs({ id: stubborn.slice(0, 13), state: { state: "CONTAINER_RUNNING" } }), [
      stubborn,
    ]);
    assert.deepEqual(await ctrs({ state: { state: "CONTAINER_EXITED" } }), []);
  });

  void it("answers ExecSync in the pod's UTS namespace and with its DNS config", async () => {
    const answer = await call(rt, "ExecSync", {
      container_id: server,
      cmd: ["sh", "-c", "hostname; cat /etc/resolv.conf; echo oops >&2; exit 2"],
      timeout: 30,
    });
    assert.equal(answer.exit_code, 2);
    assert.equal(
      Buffer.from(answer.stdout as Buffer).toString(),
      "web-host\nsearch e2e.svc.cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n",
    );
    assert.equal(Buffer.from(answer.stderr as Buffer).toString(), "oops\n");
  });

  void it("follows a container's output through Attach", async () => {
    const { url } = (await call(rt, "Attach", { container_id: worker, stdout: true, stderr: true })) as {
      url: string;
    };
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/attach\//);
    const up = (await upgrade(url, ["v4.channel.k8s.io"])) as Session;
    assert.equal(up.status, 101);
    up.session.openStream(headers({ streamtype: "error" })).writable.end();
    let out = "";
    up.session
      .openStream(headers({ streamtype: "stdout" }))
      .readable.on("data", (d: Buffer) => (out += d.toString()));
    up.session.openStream(headers({ streamtype: "stderr" })).readable.resume();
    // Output written after the attach: two ticks in a row.
    await waitFor(() => (/tick-\d+\ntick-\d+\n/.test(out) ? true : undefined), {
      timeoutMs: WAIT_MS,
      what: "the attach to show the worker's ticks",
      detail: () => out,
    });
    up.socket.destroy();
    await within(up.session.closed, { timeoutMs: WAIT_MS, what: "the attach session to close" });
  });

  void it("runs an Exec with stdin through the streaming URL, and the container then exits by itself with its exact code", async () => {
    const { url } = (await call(rt, "Exec", {
      container_id: worker,
      cmd: ["sh", "-c", "cat > /tmp/quit; echo wrote $(cat /tmp/quit); exit 6"],
      stdin: true,
      stdout: true,
      stderr: true,
    })) as { url: string };
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/exec\//);
    const result = await execSession(url, { stdin: "please", stderr: true });
    assert.equal(result.stdout, "wrote please\n");
    assert.deepEqual(execStatus(result.error), { status: "Failure", code: 6 });
    const exited = await waitState(rt, worker, "CONTAINER_EXITED");
    assert.equal(exited.exit_code, 3);
    assert.equal(exited.reason, "Error");
    const created = BigInt(exited.created_at as string);
    const started = BigInt(exited.started_at as string);
    const finished = BigInt(exited.finished_at as string);
    assert.ok(created > 0n && started >= created && finished >= started, `${created} ${started} ${finished}`);
    const lines = stdoutLines(await readFile(exited.log_path as string, "utf8"));
    assert.equal(lines.at(-1), "bye");
    assert.equal(exited.log_path, join(dir, "logs", "worker", "0.log"));
    // A URL is good once.
    const again = await upgrade(url, ["v4.channel.k8s.io"]);
    assert.equal(again.status, 404);
  });

  void it("carries a connection into the pod through PortForward, and through its host port mapping", async () => {
    const { url } = (await call(rt, "PortForward", { pod_sandbox_id: podId, port: [WEB_PORT] })) as {
      url: string;
    };
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/portforward\//);
    const reply = await forward(url, WEB_PORT, "GET /index.html HTTP/1.0\r\n\r\n");
    assert.equal(reply.error, "");
    assert.match(reply.data, /^HTTP\/1\.[01] 200 OK\r\n/);
    assert.match(reply.data, /\r\n\r\npong-from-pod\n$/);
    // The server closes the connection after its answer; the client never half-closes (as curl
    // through kubectl port-forward): the error stream still ends, so client-go lets go.
    const { url: again } = (await call(rt, "PortForward", { pod_sandbox_id: podId, port: [WEB_PORT] })) as {
      url: string;
    };
    const open = await forward(again, WEB_PORT, "GET /index.html HTTP/1.0\r\n\r\n", false);
    assert.equal(open.error, "");
    assert.match(open.data, /\r\n\r\npong-from-pod\n$/);
    const viaHost = await fetch(`http://127.0.0.1:${hostPort}/index.html`, {
      signal: AbortSignal.timeout(WAIT_MS),
    });
    assert.equal(await viaHost.text(), "pong-from-pod\n");
  });

  void it("shows the CRI containers in the console's list", async () => {
    const console = await SkiffClient.connect(`unix://${dir}/skiff.sock`);
    try {
      const listed = await console.list();
      for (const id of [server, worker, stubborn]) {
        const { skiffContainer } = await infoOf(rt, id);
        assert.ok(listed.includes(skiffContainer as never), `${skiffContainer} in ${listed.join(", ")}`);
      }
      const inspected = await console.inspect((await infoOf(rt, server)).skiffContainer as never);
      assert.equal(inspected.repository, "cri");
      assert.equal(inspected.state, "running");
    } finally {
      console.close();
    }
  });

  void it("stops a container that ignores SIGTERM with SIGKILL after the timeout", async () => {
    await call(rt, "StopContainer", { container_id: stubborn, timeout: 1 });
    const s = await statusOf(rt, stubborn);
    assert.equal(s.state, "CONTAINER_EXITED");
    assert.equal(s.exit_code, 137);
    assert.equal(s.reason, "Error");
    assert.ok(BigInt(s.finished_at as string) >= BigInt(s.started_at as string));
  });

  void it("stops and removes the pod: its containers, namespaces, veth and cgroup gone", async () => {
    const podDir = join(dir, "state", "data", "cri", "pods", podId);
    const veth = `sk${podId.slice(0, 13)}`;
    assert.ok(await mountedBelow(podDir), "the pod's namespace files are mounted");
    assert.ok(await linkExists(veth), `veth ${veth} exists`);
    assert.notDeepEqual(podCgroups(cgroup, podId), []);

    await call(rt, "StopPodSandbox", { pod_sandbox_id: podId });
    const st = (await call(rt, "PodSandboxStatus", { pod_sandbox_id: podId })).status as Message;
    assert.equal(st.state, "SANDBOX_NOTREADY");
    assert.equal((st.network as Message | null)?.ip ?? "", "");
    assert.equal((await statusOf(rt, server)).state, "CONTAINER_EXITED");
    assert.equal(await linkExists(veth), false, "the veth goes with the stop");
    await assert.rejects(fetch(`http://127.0.0.1:${hostPort}/`, { signal: AbortSignal.timeout(5000) }));
    // The exited containers keep their statuses until the pod goes.
    assert.equal((await statusOf(rt, worker)).exit_code, 3);

    await call(rt, "RemovePodSandbox", { pod_sandbox_id: podId });
    assert.deepEqual((await call(rt, "ListContainers", {})).containers, []);
    for (const id of [server, worker, stubborn])
      assert.equal((await refusal(statusOf(rt, id))).code, status.NOT_FOUND);
    assert.equal(
      (await refusal(call(rt, "PodSandboxStatus", { pod_sandbox_id: podId }))).code,
      status.NOT_FOUND,
    );
    assert.equal(await mountedBelow(podDir), false, "namespace files unmounted");
    assert.equal(existsSync(podDir), false);
    assert.deepEqual(podCgroups(cgroup, podId), []);
    for (const id of [server, worker, stubborn])
      assert.equal(existsSync(join(dir, "state", "data", "cri", "containers", id)), false);
    await call(rt, "RemovePodSandbox", { pod_sandbox_id: podId }); // again: not an error
  });

  void it("removes the image", async () => {
    await call(img, "RemoveImage", { image: { image } });
    assert.deepEqual((await call(img, "ListImages", {})).images, []);
    assert.equal((await call(img, "ImageStatus", { image: { image } })).image ?? null, null);
  });
});

void describe("CRI across a kill -9 of skiffd, and the image policy after a restart", () => {
  const net = testPodNetwork();
  let dir: string;
  let cgroup: string;
  let child: ChildProcess | undefined;
  let rt: Client | undefined;
  let img: Client | undefined;

  async function writeConfig(allowed: string): Promise<void> {
    await writeFile(
      join(dir, "skiffd.toml"),
      testConfigText(
        dir,
        cgroup,
        (d) => `[cri]\nsocket = "${d}/cri.sock"\n${net.toml(0)}allowed_registries = ["${allowed}"]\n`,
      ),
    );
  }

  async function startSkiffd(): Promise<Client> {
    const proc = spawn(process.execPath, [SKIFFD, "--config", join(dir, "skiffd.toml")], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    let log = "";
    proc.stderr.on("data", (d: Buffer) => (log += d.toString()));
    child = proc;
    rt?.close();
    img?.close();
    const c = criClients(`${dir}/cri.sock`);
    rt = c.runtime;
    img = c.images;
    await waitFor(
      async () => {
        if (proc.exitCode !== null) throw new Error(`skiffd exited early:\n${log}`);
        return call(c.runtime, "Version", { version: "0.1.0" }).then(
          () => true,
          () => false,
        );
      },
      { timeoutMs: 90_000, what: "skiffd's CRI endpoint", intervalMs: 100, detail: () => log.slice(-3000) },
    );
    return c.runtime;
  }

  async function stopSkiffd(signal: NodeJS.Signals): Promise<void> {
    const proc = child;
    if (proc === undefined || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((resolve) => proc.once("exit", resolve));
    proc.kill(signal);
    await within(exited, { timeoutMs: 60_000, what: `skiffd to exit after ${signal}` });
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "skiff-test-"));
    cgroup = testCgroupName();
  });

  after(async () => {
    if (rt !== undefined) {
      const pods = ((await call(rt, "ListPodSandbox", {}).catch(() => ({ items: [] }))).items ??
        []) as Message[];
      for (const p of pods)
        await call(rt, "RemovePodSandbox", { pod_sandbox_id: p.id }).catch(() => undefined);
      rt.close();
      img?.close();
    }
    await stopSkiffd("SIGTERM");
    if (dir) await cleanupDaemon({ dir, cgroup });
    await net.remove();
  });

  void it("keeps pods and containers whole, exec working and the exact stop status; then refuses a stored image the new policy does not allow", async () => {
    await writeConfig(registry.host);
    let c = await startSkiffd();
    // The default handlers: runc, and crun where installed; crun is dead on a hybrid cgroup host.
    const info = JSON.parse(
      ((await call(c, "Status", { verbose: true })).info as Record<string, string>).runtimeHandlers!,
    ) as { name: string; alive: boolean }[];
    if (info.some((h) => h.name === "crun" && !h.alive)) {
      const dead = await refusal(
        call(c, "RunPodSandbox", {
          config: { metadata: { name: "oncrun", namespace: "e2e", uid: "uid-oncrun" } },
          runtime_handler: "crun",
        }),
      );
      assert.equal(dead.code, status.FAILED_PRECONDITION, dead.details);
      assert.match(dead.details, /runtime handler crun is dead/);
    }
    await call(img!, "PullImage", { image: { image } });
    const podId = (
      await call(c, "RunPodSandbox", {
        config: {
          metadata: { name: "survivor", namespace: "e2e", uid: "uid-survivor" },
          hostname: "survivor",
          log_directory: join(dir, "logs"),
          labels: { app: "survivor" },
        },
      })
    ).pod_sandbox_id as string;
    const id = (
      await call(c, "CreateContainer", {
        pod_sandbox_id: podId,
        config: containerConfig(
          image,
          "runner",
          "trap 'exit 5' TERM; echo ready; while true; do sleep 0.1; done",
        ),
        sandbox_config: {},
      })
    ).container_id as string;
    await call(c, "StartContainer", { container_id: id });
    await waitState(c, id, "CONTAINER_RUNNING");
    await waitForLine(c, id, "ready");
    const podBefore = (await call(c, "PodSandboxStatus", { pod_sandbox_id: podId })).status as Message;
    const before = await statusOf(c, id);

    await stopSkiffd("SIGKILL");
    c = await startSkiffd();

    const pods = ((await call(c, "ListPodSandbox", {})).items as Message[]).map((p) => [p.id, p.state]);
    assert.deepEqual(pods, [[podId, "SANDBOX_READY"]]);
    const podAfter = (await call(c, "PodSandboxStatus", { pod_sandbox_id: podId })).status as Message;
    for (const key of ["metadata", "created_at", "network", "labels", "runtime_handler"])
      assert.deepEqual(podAfter[key], podBefore[key], key);
    const listed = ((await call(c, "ListContainers", {})).containers as Message[]).map((x) => [
      x.id,
      x.state,
    ]);
    assert.deepEqual(listed, [[id, "CONTAINER_RUNNING"]]);
    const after = await statusOf(c, id);
    for (const key of ["state", "created_at", "started_at", "log_path", "image_ref", "labels"])
      assert.deepEqual(after[key], before[key], key);

    const sync = await call(c, "ExecSync", { container_id: id, cmd: ["hostname"], timeout: 30 });
    assert.equal(Buffer.from(sync.stdout as Buffer).toString(), "survivor\n");
    assert.equal(sync.exit_code, 0);
    const { url } = (await call(c, "Exec", {
      container_id: id,
      cmd: ["echo", "still-here"],
      stdout: true,
    })) as {
      url: string;
    };
    const result = await execSession(url);
    assert.equal(result.stdout, "still-here\n");
    assert.deepEqual(execStatus(result.error), { status: "Success" });

    await call(c, "StopContainer", { container_id: id, timeout: 30 });
    const stopped = await statusOf(c, id);
    assert.equal(stopped.state, "CONTAINER_EXITED");
    assert.equal(stopped.exit_code, 5);
    await call(c, "RemoveContainer", { container_id: id });

    // The same directories under a policy that no longer allows the registry the image came from.
    await stopSkiffd("SIGTERM");
    await writeConfig("registry.example.com");
    c = await startSkiffd();
    assert.equal(
      ((await call(img!, "ListImages", {})).images as Message[]).length,
      1,
      "the image is still stored",
    );
    const denied = await refusal(
      call(c, "CreateContainer", {
        pod_sandbox_id: podId,
        config: containerConfig(image, "late", "true"),
        sandbox_config: {},
      }),
    );
    assert.equal(denied.code, status.PERMISSION_DENIED, denied.details);
    assert.match(denied.details, /allowed_registries/);
    const pull = await refusal(call(img!, "PullImage", { image: { image } }));
    assert.equal(pull.code, status.PERMISSION_DENIED, pull.details);
    assert.deepEqual((await call(c, "ListContainers", {})).containers, []);
    await call(c, "RemovePodSandbox", { pod_sandbox_id: podId });
    await call(img!, "RemoveImage", { image: { image } });
  });
});
