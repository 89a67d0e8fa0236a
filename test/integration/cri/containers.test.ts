/**
 * CRI containers in pods end to end: a real skiffd (in process) with `[cri] socket`, a gRPC
 * client generated from the vendored api.proto over the real Unix socket, an image with a full
 * busybox pushed to Debian's docker-registry on 127.0.0.1, and containers that run through
 * Skiff's own path (state owner, executor, monitor, skiff-init, runc, cgroups, overlayfs).
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { chmod, copyFile, mkdtemp, readFile, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { spawn, type ChildProcess } from "node:child_process";
import { credentials, status, type Client, type ServiceError } from "@grpc/grpc-js";
import pino from "pino";
import { loadCriServices } from "../../../src/cri/proto.js";
import { parseConfig } from "../../../src/daemon/config/load.js";
import { Runtime } from "../../../src/daemon/runtime.js";
import { call, refusal, type Message } from "./grpc.js";
import { testPodNetwork } from "./pods-network.js";
import { cleanupDaemon, testCgroupName } from "../../helpers/cleanup.js";
import { SKIFFD, testConfigText } from "../../helpers/daemon.js";
import { waitFor, within } from "../../helpers/wait.js";
import { startRegistry, type Registry } from "../oci-image/fixtures.js";
import { Client as SkiffClient } from "../../../src/client/index.js";
import { pushBusyboxImage, type BusyboxImage } from "./busybox-image.js";

const HOST_RUNC = "/usr/sbin/runc";
const WAIT_MS = 60_000;

/** busybox with accounts (users by name) and an image config (Entrypoint, Cmd, Env, WorkingDir). */
const BOX: BusyboxImage = {
  name: "test/box:1",
  applets: ["sh", "echo", "sleep", "cat", "dd", "nc", "head", "tr", "printf", "ls", "id", "true", "false"],
  passwd: "root:x:0:0::/:/bin/sh\napp:x:1234:2345::/:/bin/sh\n",
  group: "root:x:0:\nappgroup:x:2345:\nextra:x:3456:\n",
  config: {
    Entrypoint: ["/bin/sh", "-c"],
    Cmd: ['echo "image-cmd $FROM_IMAGE $PWD"; exit 4'],
    Env: ["FROM_IMAGE=yes", "PATH=/bin"],
    WorkingDir: "/tmp",
  },
};

let work: string;
let registry: Registry;
let image: string;
let dir: string;
let cgroup: string;
let runtime: Runtime;
let client: Client;
const net = testPodNetwork();

/** What the tests need of a pod: its id, log directory and cgroup (from its verbose status). */
interface TestPod {
  id: string;
  logDirectory: string;
  cgroupParent: string;
}

function podConfig(name: string, logDirectory: string, extra: Message = {}): Message {
  return {
    metadata: { name, namespace: "test", uid: `uid-${name}`, attempt: 0 },
    hostname: name,
    log_directory: logDirectory,
    labels: { app: name },
    ...extra,
  };
}

/** A pod through the real pod store (RunPodSandbox), its logs under `base`. */
async function runPod(c: Client, name: string, base: string, runtimeHandler = ""): Promise<TestPod> {
  const logDirectory = join(base, "pods", name);
  const answer = await call(c, "RunPodSandbox", {
    config: podConfig(name, logDirectory),
    runtime_handler: runtimeHandler,
  });
  const id = answer.pod_sandbox_id as string;
  const status = await call(c, "PodSandboxStatus", { pod_sandbox_id: id, verbose: true });
  const ref = JSON.parse((status.info as Record<string, string>).info!) as { cgroupParent: string };
  return { id, logDirectory, cgroupParent: ref.cgroupParent };
}

async function testPod(name: string): Promise<TestPod> {
  return runPod(client, name, dir);
}

function containerConfig(name: string, script: string, more: Message = {}): Message {
  return {
    metadata: { name, attempt: 0 },
    image: { image },
    command: ["/bin/sh", "-c", script],
    log_path: `${name}/0.log`,
    labels: { app: name, tier: "test" },
    annotations: { "skiff.test/note": `container ${name}` },
    ...more,
  };
}

async function create(pod: TestPod, config: Message, c: Client = client): Promise<string> {
  const answer = await call(c, "CreateContainer", { pod_sandbox_id: pod.id, config, sandbox_config: {} });
  return answer.container_id as string;
}

async function statusOf(id: string, c: Client = client): Promise<Message> {
  return (await call(c, "ContainerStatus", { container_id: id, verbose: true })).status as Message;
}

async function waitState(id: string, state: string, c: Client = client): Promise<Message> {
  return waitFor(
    async () => {
      const s = await statusOf(id, c);
      return s.state === state ? s : undefined;
    },
    { timeoutMs: WAIT_MS, what: `container ${id} to be ${state}` },
  );
}

/** Waits until the container's log has the stdout line `content`. */
async function waitForLine(id: string, content: string, c: Client = client): Promise<void> {
  const path = (await statusOf(id, c)).log_path as string;
  await waitFor(
    async () => {
      const text = await readFile(path, "utf8").catch(() => "");
      return logLines(text).some((l) => l.content === content) ? true : undefined;
    },
    { timeoutMs: WAIT_MS, what: `${id} to log ${content}` },
  );
}

/** The CRI log lines of a file: `<RFC3339Nano> <stream> <F|P> <text>`. */
function logLines(text: string): { time: string; stream: string; tag: string; content: string }[] {
  return text
    .split("\n")
    .filter((l) => l !== "")
    .map((line) => {
      const m = /^(\S+) (stdout|stderr) ([FP]) (.*)$/.exec(line);
      assert.ok(m, `not a CRI log line: ${JSON.stringify(line)}`);
      return { time: m[1]!, stream: m[2]!, tag: m[3]!, content: m[4]! };
    });
}

/** The daemon's runc and a second handler: a copy of runc at a path of the test's own. */
function criToml(d: string): string {
  return (
    `[cri]\nsocket = "${d}/cri.sock"\n${net.toml(0)}` +
    `[cri.runtime_handlers.runc]\n[cri.runtime_handlers.second]\nkind = "runc"\npath = "${d}/runc-second"\n`
  );
}

before(async () => {
  work = await mkdtemp(join(tmpdir(), "skiff-cri-ctrs-"));
  registry = await startRegistry(work);
  image = await pushBusyboxImage(work, registry, BOX);
  dir = await mkdtemp(join(tmpdir(), "skiff-test-"));
  cgroup = testCgroupName();
  await copyFile(HOST_RUNC, join(dir, "runc-second"));
  await chmod(join(dir, "runc-second"), 0o755);
  runtime = await Runtime.start(parseConfig(testConfigText(dir, cgroup, criToml)), pino({ level: "silent" }));
  client = new (loadCriServices().RuntimeService)(`unix:${dir}/cri.sock`, credentials.createInsecure());
  await pull(dir);
});

async function pull(d: string): Promise<void> {
  const imageClient = new (loadCriServices().ImageService)(
    `unix:${d}/cri.sock`,
    credentials.createInsecure(),
  );
  try {
    await call(imageClient, "PullImage", { image: { image } });
  } finally {
    imageClient.close();
  }
}

after(async () => {
  if (client) {
    const pods = ((await call(client, "ListPodSandbox", {}).catch(() => ({ items: [] }))).items ??
      []) as Message[];
    for (const p of pods)
      await call(client, "RemovePodSandbox", { pod_sandbox_id: p.id }).catch(() => undefined);
    client.close();
  }
  if (runtime) {
    runtime.requestShutdown({ kind: "host", cause: "test done" });
    await within(runtime.stopped, { timeoutMs: WAIT_MS, what: "the daemon to stop" });
  }
  if (dir) await cleanupDaemon({ dir, cgroup });
  await net.remove();
  await registry?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

void describe("CRI containers in pods", () => {
  void it("creates, starts, reports and removes a container that exits with its exact code, logging in CRI's format", async () => {
    const pod = await testPod("exits");
    const id = await create(pod, containerConfig("exiter", "echo out-line; echo err-line >&2; exit 7"));
    assert.match(id, /^[0-9a-f]{64}$/);
    const created = await statusOf(id);
    assert.equal(created.state, "CONTAINER_CREATED");
    assert.deepEqual(created.labels, { app: "exiter", tier: "test" });
    assert.match(created.image_ref as string, /^sha256:[0-9a-f]{64}$/);
    await call(client, "StartContainer", { container_id: id });
    const exited = await waitState(id, "CONTAINER_EXITED");
    assert.equal(exited.exit_code, 7);
    assert.equal(exited.reason, "Error");
    assert.ok(BigInt(exited.started_at as string) > 0n);
    assert.ok(BigInt(exited.finished_at as string) >= BigInt(exited.started_at as string));
    assert.equal(exited.log_path, join(pod.logDirectory, "exiter", "0.log"));
    const lines = logLines(await readFile(exited.log_path, "utf8"));
    assert.deepEqual(lines.map((l) => [l.stream, l.tag, l.content]).sort(), [
      ["stderr", "F", "err-line"],
      ["stdout", "F", "out-line"],
    ]);
    for (const l of lines) assert.match(l.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
    await refusal(call(client, "StartContainer", { container_id: id })).then((e) =>
      assert.equal(e.code, status.FAILED_PRECONDITION),
    );
    // Its image is its root's lower layer: not removable while the container exists.
    const images = new (loadCriServices().ImageService)(`unix:${dir}/cri.sock`, credentials.createInsecure());
    try {
      const inUse = await refusal(call(images, "RemoveImage", { image: { image } }));
      assert.equal(inUse.code, status.FAILED_PRECONDITION);
    } finally {
      images.close();
    }
    await call(client, "RemoveContainer", { container_id: id });
    const gone = await refusal(call(client, "ContainerStatus", { container_id: id }));
    assert.equal(gone.code, status.NOT_FOUND);
    await call(client, "RemoveContainer", { container_id: id }); // again: not an error
  });

  void it("runs the image's Entrypoint, Cmd, Env and WorkingDir when the config names no command", async () => {
    const pod = await testPod("imagecmd");
    const id = await create(pod, { ...containerConfig("plain", ""), command: [], args: [] });
    await call(client, "StartContainer", { container_id: id });
    const exited = await waitState(id, "CONTAINER_EXITED");
    assert.equal(exited.exit_code, 4);
    const lines = logLines(await readFile(exited.log_path as string, "utf8"));
    assert.deepEqual(
      lines.map((l) => l.content),
      ["image-cmd yes /tmp"],
    );
    await call(client, "RemoveContainer", { container_id: id });
  });

  void it("runs as a user named in the image's /etc/passwd", async () => {
    const pod = await testPod("named");
    const id = await create(
      pod,
      containerConfig("whoami", 'echo "$(id -u) $(id -g)"', {
        linux: { security_context: { run_as_username: "app" } },
      }),
    );
    await call(client, "StartContainer", { container_id: id });
    const exited = await waitState(id, "CONTAINER_EXITED");
    assert.equal(exited.exit_code, 0);
    const lines = logLines(await readFile(exited.log_path as string, "utf8"));
    assert.deepEqual(
      lines.map((l) => l.content),
      ["1234 2345"],
    );
    await call(client, "RemoveContainer", { container_id: id });
  });

  void it("starts a pod's containers under the pod's runtime handler", async () => {
    const pod = await runPod(client, "onsecond", dir, "second");
    const id = await create(pod, containerConfig("c", "echo ready; while true; do sleep 1; done"));
    await call(client, "StartContainer", { container_id: id });
    await waitForLine(id, "ready");
    const info = JSON.parse(
      (
        (await call(client, "ContainerStatus", { container_id: id, verbose: true })).info as Record<
          string,
          string
        >
      ).info!,
    ) as { pid: number };
    // The container's init is the monitor's child (it is the subreaper); the monitor runs the handler's runtime.
    const ppid = /PPid:\s+(\d+)/.exec(await readFile(`/proc/${info.pid}/status`, "utf8"))![1]!;
    const monitorArgs = (await readFile(`/proc/${ppid}/cmdline`, "utf8")).split("\0");
    assert.equal(monitorArgs[monitorArgs.indexOf("--runtime") + 1], join(dir, "runc-second"));
    await call(client, "StopContainer", { container_id: id, timeout: 5 });
    assert.equal((await statusOf(id)).state, "CONTAINER_EXITED");
    await call(client, "RemoveContainer", { container_id: id });
  });

  void it("reports Completed for exit 0 and splits a long line into P pieces and an F end", async () => {
    const pod = await testPod("completes");
    const id = await create(pod, containerConfig("long", "head -c 20000 /dev/zero | tr '\\0' x; echo"));
    await call(client, "StartContainer", { container_id: id });
    const exited = await waitState(id, "CONTAINER_EXITED");
    assert.equal(exited.exit_code, 0);
    assert.equal(exited.reason, "Completed");
    const lines = logLines(await readFile(exited.log_path as string, "utf8"));
    assert.deepEqual(
      lines.map((l) => l.tag),
      ["P", "P", "F"],
    );
    assert.equal(lines.map((l) => l.content).join(""), "x".repeat(20000));
    await call(client, "RemoveContainer", { container_id: id });
  });

  void it("stops a container that ignores SIGTERM with SIGKILL after the timeout, and one that obeys at once", async () => {
    const pod = await testPod("stops");
    const stubborn = await create(
      pod,
      containerConfig("stubborn", "trap '' TERM; echo ready; while true; do sleep 1; done"),
    );
    const polite = await create(
      pod,
      containerConfig("polite", "trap 'exit 3' TERM; echo ready; while true; do sleep 0.1; done"),
    );
    await call(client, "StartContainer", { container_id: stubborn });
    await call(client, "StartContainer", { container_id: polite });
    const running = await waitState(stubborn, "CONTAINER_RUNNING");
    // The signals must find the traps set: each says `ready` once its trap is.
    for (const id of [stubborn, polite]) await waitForLine(id, "ready");
    assert.equal(running.reason, "");
    await call(client, "StopContainer", { container_id: polite, timeout: 30 });
    const p = await statusOf(polite);
    assert.equal(p.state, "CONTAINER_EXITED");
    assert.equal(p.exit_code, 3);
    await call(client, "StopContainer", { container_id: stubborn, timeout: 1 });
    const s = await statusOf(stubborn);
    assert.equal(s.state, "CONTAINER_EXITED");
    assert.equal(s.exit_code, 137);
    assert.equal(s.reason, "Error");
    await call(client, "StopContainer", { container_id: stubborn, timeout: 1 }); // stopped: fine
    for (const id of [stubborn, polite]) await call(client, "RemoveContainer", { container_id: id });
  });

  void it("reports OOMKilled for a container that allocates past its memory limit", async () => {
    const pod = await testPod("oom");
    const id = await create(
      pod,
      containerConfig("hog", "dd if=/dev/zero of=/dev/null bs=200M count=1", {
        linux: { resources: { memory_limit_in_bytes: String(32 * 1024 * 1024) } },
      }),
    );
    await call(client, "StartContainer", { container_id: id });
    const exited = await waitState(id, "CONTAINER_EXITED");
    assert.equal(exited.reason, "OOMKilled");
    assert.equal(exited.exit_code, 137);
    await call(client, "RemoveContainer", { container_id: id });
  });

  void it("lists containers by id, state, pod and labels, shows them in the console's list, and reports stats", async () => {
    const pod = await testPod("lists");
    const other = await testPod("lists-other");
    const a = await create(
      pod,
      containerConfig("a", "while true; do sleep 1; done", {
        labels: { app: "a", tier: "x" },
        linux: { resources: { oom_score_adj: "500" } },
      }),
    );
    const b = await create(other, containerConfig("b", "exit 0", { labels: { app: "b", tier: "x" } }));
    await call(client, "StartContainer", { container_id: a });
    await waitState(a, "CONTAINER_RUNNING");
    const ids = async (filter: Message): Promise<string[]> =>
      ((await call(client, "ListContainers", { filter })).containers as Message[])
        .map((c) => c.id as string)
        .sort();
    assert.deepEqual(await ids({ id: a }), [a]);
    assert.deepEqual(await ids({ id: a.slice(0, 10) }), [a]);
    assert.deepEqual(await ids({ pod_sandbox_id: other.id }), [b]);
    assert.deepEqual(await ids({ state: { state: "CONTAINER_RUNNING" } }), [a]);
    assert.deepEqual(await ids({ state: { state: "CONTAINER_CREATED" } }), [b]);
    assert.deepEqual(await ids({ label_selector: { tier: "x" } }), [a, b].sort());
    assert.deepEqual(await ids({ label_selector: { app: "b", tier: "x" } }), [b]);
    assert.deepEqual(await ids({ label_selector: { app: "c" } }), []);

    const console = await SkiffClient.connect(`unix://${dir}/skiff.sock`);
    try {
      const listed = await console.list();
      const skiffId = JSON.parse(
        (
          (await call(client, "ContainerStatus", { container_id: a, verbose: true })).info as Record<
            string,
            string
          >
        ).info!,
      ) as {
        skiffContainer: string;
      };
      assert.ok(listed.includes(skiffId.skiffContainer), `${skiffId.skiffContainer} in ${listed.join(", ")}`);
      assert.match(skiffId.skiffContainer, /^cri_lists_a_[0-9a-f]{12}:0\.0\.0$/);
      const inspected = await console.inspect(skiffId.skiffContainer);
      assert.equal(inspected.repository, "cri");
      assert.equal(inspected.state, "running");
      assert.ok((inspected.process?.pid ?? 0) > 0);
      assert.equal(inspected.manifest.init, "/bin/sh");
      assert.equal(inspected.manifest.env, undefined, "CRI data stays beside the manifest");
    } finally {
      console.close();
    }

    const info = JSON.parse(
      (
        (await call(client, "ContainerStatus", { container_id: a, verbose: true })).info as Record<
          string,
          string
        >
      ).info!,
    ) as { pid: number };
    assert.equal((await readFile(`/proc/${info.pid}/oom_score_adj`, "utf8")).trim(), "500");

    const stats = (await call(client, "ContainerStats", { container_id: a })).stats as Message;
    assert.ok(BigInt(((stats.cpu as Message).usage_core_nano_seconds as Message).value as string) > 0n);
    assert.ok(BigInt(((stats.memory as Message).working_set_bytes as Message).value as string) > 0n);
    assert.ok((stats.writable_layer as Message).used_bytes);
    const listStats = (await call(client, "ListContainerStats", { filter: { pod_sandbox_id: pod.id } }))
      .stats as Message[];
    assert.deepEqual(
      listStats.map((s) => (s.attributes as Message).id),
      [a],
    );

    // Resources: visible in the cgroup (v1 memory hierarchy or v2 unified).
    await call(client, "UpdateContainerResources", {
      container_id: a,
      linux: { memory_limit_in_bytes: String(48 * 1024 * 1024), cpu_shares: "512" },
    });
    const skiffName = (
      JSON.parse(
        (
          (await call(client, "ContainerStatus", { container_id: a, verbose: true })).info as Record<
            string,
            string
          >
        ).info!,
      ) as { skiffContainer: string }
    ).skiffContainer.split(":")[0]!;
    const v1 = `/sys/fs/cgroup/memory/${cgroup}/${pod.cgroupParent}/${skiffName}/memory.limit_in_bytes`;
    const v2 = `/sys/fs/cgroup/${cgroup}/${pod.cgroupParent}/${skiffName}/memory.max`;
    const limitFile = existsSync(v1) ? v1 : v2;
    assert.equal((await readFile(limitFile, "utf8")).trim(), String(48 * 1024 * 1024));
    const updated = (await statusOf(a)).resources as { linux: Message };
    assert.equal(updated.linux.memory_limit_in_bytes, String(48 * 1024 * 1024));

    // Removals at once, twice for the running one: each succeeds, one after the other.
    await Promise.all([a, a, b].map((id) => call(client, "RemoveContainer", { container_id: id })));
    assert.deepEqual(await ids({ pod_sandbox_id: pod.id }), []);
    assert.deepEqual(await ids({ pod_sandbox_id: other.id }), []);
  });

  void it("reopens the log after the kubelet renamed it", async () => {
    const pod = await testPod("reopens");
    const id = await create(
      pod,
      containerConfig("talker", "i=0; while true; do echo line-$i; i=$((i+1)); sleep 0.05; done"),
    );
    await call(client, "StartContainer", { container_id: id });
    const s = await waitState(id, "CONTAINER_RUNNING");
    const path = s.log_path as string;
    await waitFor(
      async () => (existsSync(path) && (await readFile(path, "utf8")).includes("line-1") ? true : undefined),
      {
        timeoutMs: WAIT_MS,
        what: "the first lines",
      },
    );
    await rename(path, `${path}.1`);
    await call(client, "ReopenContainerLog", { container_id: id });
    await waitFor(
      async () => (existsSync(path) && logLines(await readFile(path, "utf8")).length > 0 ? true : undefined),
      {
        timeoutMs: WAIT_MS,
        what: "lines in the reopened log",
      },
    );
    await call(client, "StopContainer", { container_id: id, timeout: 5 });
    await refusal(call(client, "ReopenContainerLog", { container_id: id })).then((e) =>
      assert.equal(e.code, status.FAILED_PRECONDITION),
    );
    await call(client, "RemoveContainer", { container_id: id });
  });

  void it("refuses hostile or unsupported configs and keeps serving", async () => {
    const pod = await testPod("refuses");
    const cases: [string, Message][] = [
      ["log path escape", containerConfig("x1", "true", { log_path: "../../escape.log" })],
      ["privileged", containerConfig("x2", "true", { linux: { security_context: { privileged: true } } })],
      [
        "relative mount",
        containerConfig("x3", "true", { mounts: [{ container_path: "data", host_path: "/tmp" }] }),
      ],
      [
        "missing host path",
        containerConfig("x4", "true", { mounts: [{ container_path: "/data", host_path: "/no/such/dir" }] }),
      ],
      [
        "propagation",
        containerConfig("x5", "true", {
          mounts: [{ container_path: "/d", host_path: "/tmp", propagation: "PROPAGATION_BIDIRECTIONAL" }],
        }),
      ],
      [
        "too many env",
        containerConfig("x6", "true", {
          envs: Array.from({ length: 2000 }, (_, i) => ({ key: `K${i}`, value: Buffer.from("v") })),
        }),
      ],
      ["empty command", { metadata: { name: "x7" }, image: { image }, command: [""] }],
    ];
    for (const [what, config] of cases) {
      const error = await refusal(create(pod, config));
      assert.equal(error.code, status.INVALID_ARGUMENT, `${what}: ${error.details}`);
    }
    const unknownPod = await refusal(
      call(client, "CreateContainer", {
        pod_sandbox_id: "0".repeat(64),
        config: containerConfig("x", "true"),
      }),
    );
    assert.equal(unknownPod.code, status.NOT_FOUND);
    const unknownImage = await refusal(
      create(pod, { ...containerConfig("x8", "true"), image: { image: "127.0.0.1:1/none:1" } }),
    );
    assert.equal(unknownImage.code, status.NOT_FOUND);
    assert.equal(existsSync(join(dir, "escape.log")), false);
    // The same name and attempt twice at once: one is created, the other refused.
    const twice = await Promise.allSettled([
      create(pod, containerConfig("twin", "true")),
      create(pod, containerConfig("twin", "true")),
    ]);
    assert.deepEqual(twice.map((r) => r.status).sort(), ["fulfilled", "rejected"]);
    const refusedTwin = twice.find((r) => r.status === "rejected") as PromiseRejectedResult;
    assert.equal((refusedTwin.reason as ServiceError).code, status.FAILED_PRECONDITION);
    const twin = twice.find((r) => r.status === "fulfilled") as PromiseFulfilledResult<string>;
    await call(client, "RemoveContainer", { container_id: twin.value });
    assert.deepEqual(
      (await call(client, "ListContainers", { filter: { pod_sandbox_id: pod.id } })).containers,
      [],
    );
  });

  void it("runs two containers of one pod on the pod's localhost", async () => {
    const pod = await testPod("shares");
    // A port of this test process's own: the host's loopback must not answer on it.
    const port = 20_000 + (process.pid % 20_000);
    const server = await create(
      pod,
      containerConfig(
        "server",
        `mkdir -p /www && echo pong-from-server > /www/index.html && exec httpd -f -p 127.0.0.1:${port} -h /www`,
      ),
    );
    const fetcher = await create(
      pod,
      containerConfig(
        "fetcher",
        `until wget -q -O - http://127.0.0.1:${port}/index.html; do sleep 0.2; done`,
      ),
    );
    await call(client, "StartContainer", { container_id: server });
    await call(client, "StartContainer", { container_id: fetcher });
    const done = await waitState(fetcher, "CONTAINER_EXITED");
    assert.equal(done.exit_code, 0);
    const lines = logLines(await readFile(done.log_path as string, "utf8"));
    assert.ok(
      lines.some((l) => l.stream === "stdout" && l.content === "pong-from-server"),
      JSON.stringify(lines),
    );
    // The pod's loopback is not the host's: nothing of the pod listens on the host's.
    await assert.rejects(fetch(`http://127.0.0.1:${port}/index.html`, { signal: AbortSignal.timeout(5000) }));
    await call(client, "StopContainer", { container_id: server, timeout: 5 });
    for (const id of [server, fetcher]) await call(client, "RemoveContainer", { container_id: id });
  });

  void it("ends a pod's containers when the pod stops and removes them with the pod", async () => {
    const pod = await testPod("podstop");
    const id = await create(pod, containerConfig("sleeper", "while true; do sleep 1; done"));
    await call(client, "StartContainer", { container_id: id });
    await waitState(id, "CONTAINER_RUNNING");
    await call(client, "StopPodSandbox", { pod_sandbox_id: pod.id });
    const stopped = await statusOf(id);
    assert.equal(stopped.state, "CONTAINER_EXITED");
    // SIGTERM and SIGKILL at once (the pod's stop does not wait): whichever ended the shell.
    assert.ok([137, 143].includes(stopped.exit_code as number), String(stopped.exit_code));
    const refused = await refusal(create(pod, containerConfig("late", "true")));
    assert.equal(refused.code, status.FAILED_PRECONDITION);
    await call(client, "RemovePodSandbox", { pod_sandbox_id: pod.id });
    assert.equal((await refusal(statusOf(id))).code, status.NOT_FOUND);
  });
});

void describe("CRI containers across a kill -9 of skiffd", () => {
  const net9 = testPodNetwork();
  let dir9: string;
  let cgroup9: string;
  let child: ChildProcess | undefined;
  let c9: Client | undefined;

  async function startSkiffd(): Promise<Client> {
    const proc = spawn(process.execPath, [SKIFFD, "--config", join(dir9, "skiffd.toml")], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    let log = "";
    proc.stderr.on("data", (d: Buffer) => (log += d.toString()));
    child = proc;
    c9?.close();
    const c = new (loadCriServices().RuntimeService)(`unix:${dir9}/cri.sock`, credentials.createInsecure());
    c9 = c;
    await waitFor(
      async () => {
        if (proc.exitCode !== null) throw new Error(`skiffd exited early:\n${log}`);
        return call(c, "Version", { version: "0.1.0" }).then(
          () => true,
          () => false,
        );
      },
      { timeoutMs: 90_000, what: "skiffd's CRI endpoint", intervalMs: 100, detail: () => log.slice(-3000) },
    );
    return c;
  }

  async function killSkiffd(signal: NodeJS.Signals): Promise<void> {
    const proc = child;
    if (proc === undefined || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((resolve) => proc.once("exit", resolve));
    proc.kill(signal);
    await within(exited, { timeoutMs: 60_000, what: `skiffd to exit after ${signal}` });
  }

  before(async () => {
    dir9 = await mkdtemp(join(tmpdir(), "skiff-test-"));
    cgroup9 = testCgroupName();
    await writeFile(
      join(dir9, "skiffd.toml"),
      testConfigText(dir9, cgroup9, (d) => `[cri]\nsocket = "${d}/cri.sock"\n${net9.toml(0)}`),
    );
  });

  after(async () => {
    if (c9 !== undefined) {
      const pods = ((await call(c9, "ListPodSandbox", {}).catch(() => ({ items: [] }))).items ??
        []) as Message[];
      for (const p of pods)
        await call(c9, "RemovePodSandbox", { pod_sandbox_id: p.id }).catch(() => undefined);
      c9.close();
    }
    await killSkiffd("SIGTERM");
    if (dir9) await cleanupDaemon({ dir: dir9, cgroup: cgroup9 });
    await net9.remove();
  });

  void it("keeps the status of an exited container and stops a re-adopted running one with its exact status", async () => {
    let c = await startSkiffd();
    await pull(dir9);
    const pod = await runPod(c, "survivor", dir9);
    const running = await create(
      pod,
      containerConfig("runner", "trap 'exit 5' TERM; echo ready; while true; do sleep 0.1; done"),
      c,
    );
    const exited = await create(pod, containerConfig("quitter", "exit 3"), c);
    await call(c, "StartContainer", { container_id: running });
    await call(c, "StartContainer", { container_id: exited });
    await waitState(running, "CONTAINER_RUNNING", c);
    await waitForLine(running, "ready", c);
    const before = await waitState(exited, "CONTAINER_EXITED", c);
    assert.equal(before.exit_code, 3);
    const runningBefore = await statusOf(running, c);

    await killSkiffd("SIGKILL");
    c = await startSkiffd();

    const after = await statusOf(exited, c);
    for (const key of [
      "state",
      "exit_code",
      "reason",
      "created_at",
      "started_at",
      "finished_at",
      "log_path",
      "image_ref",
    ])
      assert.deepEqual(after[key], before[key], key);
    const readopted = await statusOf(running, c);
    assert.equal(readopted.state, "CONTAINER_RUNNING");
    assert.equal(readopted.started_at, runningBefore.started_at);
    const listed = ((await call(c, "ListContainers", {})).containers as Message[]).map((x) => x.id).sort();
    assert.deepEqual(listed, [running, exited].sort());

    await call(c, "StopContainer", { container_id: running, timeout: 30 });
    const stopped = await statusOf(running, c);
    assert.equal(stopped.state, "CONTAINER_EXITED");
    assert.equal(stopped.exit_code, 5);
    assert.equal(stopped.reason, "Error");
    for (const id of [running, exited]) await call(c, "RemoveContainer", { container_id: id });
    await call(c, "RemovePodSandbox", { pod_sandbox_id: pod.id });
  });
});
