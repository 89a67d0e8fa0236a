/**
 * CRI pod sandboxes end to end: a real skiffd with `[cri] socket` (in process, and as a child
 * process for the kill -9 recovery), a gRPC client generated from the vendored api.proto over
 * the real Unix socket, real namespaces (checked with nsenter), a real bridge and veths, real
 * cgroups. Each daemon gets its own bridge and CIDR, so tests running beside each other (or
 * another daemon on the host) never share an address; everything created is removed.
 */
import assert from "node:assert/strict";
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { readdir, readFile, stat, writeFile, mkdtemp } from "node:fs/promises";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { after, before, describe, it } from "node:test";
import { credentials, status, type Client } from "@grpc/grpc-js";
import { loadCriServices } from "../../../src/cri/proto.js";
import type { CriEndpoint } from "../../../src/cri/index.js";
import { startInProcessDaemon, SKIFFD, testConfigText, type TestDaemon } from "../../helpers/daemon.js";
import { cleanupDaemon, testCgroupName } from "../../helpers/cleanup.js";
import { waitFor, within } from "../../helpers/wait.js";
import { call, refusal, type Message } from "./grpc.js";
import { testPodNetwork, type TestPodNetwork } from "./pods-network.js";

const run = promisify(execFile);
const WAIT_MS = 30_000;

function criConfig(net: TestPodNetwork, pool: number): (dir: string) => string {
  return (dir) => `[cri]\nsocket = "${dir}/cri.sock"\n${net.toml(pool)}`;
}

function podConfig(name: string, extra: Message = {}): Message {
  return {
    metadata: { name, namespace: "test", uid: `uid-${name}`, attempt: 0 },
    hostname: name,
    log_directory: "/var/log/pods/test",
    labels: { app: name },
    ...extra,
  };
}

async function runPod(client: Client, config: Message): Promise<string> {
  const answer = await call(client, "RunPodSandbox", { config });
  return answer.pod_sandbox_id as string;
}

async function podStatus(client: Client, id: string): Promise<Message> {
  return await call(client, "PodSandboxStatus", { pod_sandbox_id: id, verbose: true });
}

/** The PodSandboxRef the verbose status carries. */
async function refOf(
  client: Client,
  id: string,
): Promise<{
  namespaces: { network?: string; ipc?: string; uts?: string };
  etcFiles: { hosts: string; resolvConf: string; hostname: string };
  cgroupParent: string;
}> {
  const info = (await podStatus(client, id)).info as Record<string, string>;
  return JSON.parse(info.info!) as never;
}

async function listIds(client: Client, filter: Message = {}): Promise<string[]> {
  const answer = await call(client, "ListPodSandbox", { filter });
  return (answer.items as Message[]).map((item) => item.id as string).sort();
}

async function linkExists(name: string): Promise<boolean> {
  return run("ip", ["link", "show", "dev", name]).then(
    () => true,
    () => false,
  );
}

async function mounted(path: string): Promise<boolean> {
  const text = await readFile("/proc/self/mountinfo", "utf8");
  return text.split("\n").some((line) => line.split(" ")[4] === path);
}

/** A TCP echo server in the network namespace `netns`, on `host:port`; ended by pid in `after`. */
const servers: ChildProcess[] = [];
async function echoServerIn(netns: string, host: string, port: number): Promise<void> {
  const script =
    `require("net").createServer(s => s.pipe(s)).listen(${port}, ${JSON.stringify(host)}, ` +
    `() => process.stdout.write("listening\\n"))`;
  const child = spawn("nsenter", [`--net=${netns}`, "--", process.execPath, "-e", script], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  servers.push(child);
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  await waitFor(() => out.includes("listening") || (child.exitCode !== null ? "exited" : false), {
    timeoutMs: WAIT_MS,
    what: "the echo server in the pod to listen",
  });
  assert.ok(out.includes("listening"), "the echo server exited");
}

/** Sends `text` to host:port and resolves with what comes back before the server side ends it. */
function echo(host: string, port: number, text: string): Promise<string> {
  return within(
    new Promise<string>((resolve, reject) => {
      const socket = connect(port, host);
      let got = "";
      socket.on("error", reject);
      socket.on("data", (d: Buffer) => {
        got += d.toString();
        if (got.length >= text.length) {
          socket.end();
          resolve(got);
        }
      });
      socket.write(text);
    }),
    { timeoutMs: WAIT_MS, what: `an echo from ${host}:${port}` },
  );
}

/** A free TCP port on the host (bound then released). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function clientFor(dir: string): Client {
  const services = loadCriServices();
  return new services.RuntimeService(`unix:${dir}/cri.sock`, credentials.createInsecure());
}

void describe("CRI pod sandboxes", () => {
  const net = testPodNetwork();
  let daemon: TestDaemon;
  let client: Client;
  let pods: CriEndpoint["pods"];

  before(async () => {
    daemon = await startInProcessDaemon(criConfig(net, 2));
    client = clientFor(daemon.dir);
    pods = (daemon.runtime as unknown as { cri: CriEndpoint }).cri.pods;
  });

  after(async () => {
    for (const child of servers)
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    // Every pod this suite made is removed by its own test; what is left is removed here.
    for (const id of client ? await listIds(client).catch(() => []) : []) {
      await call(client, "RemovePodSandbox", { pod_sandbox_id: id }).catch(() => undefined);
    }
    client?.close();
    await daemon?.stop();
    await net.remove();
  });

  void it("reports NetworkReady once the bridge is up, and accepts the kubelet's pod CIDR", async () => {
    const answer = await call(client, "Status", {});
    const conditions = (answer.status as { conditions: Message[] }).conditions;
    assert.deepEqual(conditions[1], { type: "NetworkReady", status: true, reason: "", message: "" });
    const { stdout } = await run("ip", ["-j", "addr", "show", "dev", net.bridge]);
    const addresses = (JSON.parse(stdout) as { addr_info: { local: string }[] }[])[0]!.addr_info;
    assert.ok(addresses.some((a) => a.local === `${net.prefix}1`));
    // The kubelet's pod CIDR is accepted (Skiff's own is used).
    assert.deepEqual(
      await call(client, "UpdateRuntimeConfig", {
        runtime_config: { network_config: { pod_cidr: "10.244.0.0/24" } },
      }),
      {},
    );
  });

  void it("runs a pod from the pool: hostname, files, loopback, address, cgroup; the pool refills", async () => {
    await within(pods.poolFilled(), { timeoutMs: WAIT_MS, what: "the pool to fill" });
    assert.equal(pods.pooled(), 2);
    const id = await runPod(
      client,
      podConfig("alpha", {
        dns_config: {
          servers: ["10.96.0.10", "1.1.1.1"],
          searches: ["test.svc.cluster.local", "svc.cluster.local"],
          options: ["ndots:5"],
        },
        linux: { resources: { memory_limit_in_bytes: String(64 * 1024 * 1024), cpu_shares: "512" } },
      }),
    );
    assert.equal(pods.lastSource, "pool");
    assert.match(id, /^[0-9a-f]{64}$/);
    await waitFor(() => pods.pooled() === 2, { timeoutMs: WAIT_MS, what: "the pool to refill" });

    const answer = await podStatus(client, id);
    const podState = answer.status as Message;
    assert.equal(podState.state, "SANDBOX_READY");
    assert.deepEqual(podState.metadata, { name: "alpha", namespace: "test", uid: "uid-alpha", attempt: 0 });
    const ip = (podState.network as Message).ip as string;
    assert.ok(ip.startsWith(net.prefix), `pod ip ${ip} in ${net.cidr}`);
    assert.deepEqual((podState.linux as Message).namespaces, {
      options: { network: "POD", pid: "CONTAINER", ipc: "POD", target_id: "", userns_options: null },
    });

    const ref = await refOf(client, id);
    assert.equal(ref.cgroupParent, `cri/${id}`);
    const { stdout: hostname } = await run("nsenter", [`--uts=${ref.namespaces.uts!}`, "hostname"]);
    assert.equal(hostname.trim(), "alpha");
    assert.equal(
      await readFile(ref.etcFiles.resolvConf, "utf8"),
      "search test.svc.cluster.local svc.cluster.local\nnameserver 10.96.0.10\nnameserver 1.1.1.1\noptions ndots:5\n",
    );
    assert.equal(await readFile(ref.etcFiles.hostname, "utf8"), "alpha\n");
    assert.match(
      await readFile(ref.etcFiles.hosts, "utf8"),
      new RegExp(`^${ip.replace(/\./g, "\\.")}\\talpha$`, "m"),
    );
    const { stdout: lo } = await run("nsenter", [
      `--net=${ref.namespaces.network!}`,
      "ip",
      "-j",
      "link",
      "show",
      "lo",
    ]);
    assert.ok((JSON.parse(lo) as { flags: string[] }[])[0]!.flags.includes("UP"), "loopback is up");

    const memoryDir = `/sys/fs/cgroup/memory/${daemon.cgroup}/cri/${id}`;
    if (existsSync(memoryDir)) {
      assert.equal(
        (await readFile(`${memoryDir}/memory.limit_in_bytes`, "utf8")).trim(),
        String(64 * 1024 * 1024),
      );
      await call(client, "UpdatePodSandboxResources", {
        pod_sandbox_id: id,
        resources: { memory_limit_in_bytes: String(128 * 1024 * 1024) },
      });
      assert.equal(
        (await readFile(`${memoryDir}/memory.limit_in_bytes`, "utf8")).trim(),
        String(128 * 1024 * 1024),
      );
    }
    const stats = (await call(client, "PodSandboxStats", { pod_sandbox_id: id })).stats as Message;
    assert.equal((stats.attributes as Message).id, id);
    assert.ok(((stats.linux as Message).memory as Message | null) !== null, "memory statistics");

    // The pod's address answers from the host.
    await echoServerIn(ref.namespaces.network!, "0.0.0.0", 7000);
    assert.equal(await echo(ip, 7000, "hello pod"), "hello pod");
    const after = (await call(client, "PodSandboxStats", { pod_sandbox_id: id })).stats as Message;
    const eth0 = ((after.linux as Message).network as Message).default_interface as Message;
    assert.equal(eth0.name, "eth0");
    assert.ok(Number((eth0.rx_bytes as Message).value) >= "hello pod".length, "the pod received bytes");
    assert.ok(Number((eth0.tx_bytes as Message).value) >= "hello pod".length, "the pod sent bytes");

    await call(client, "RemovePodSandbox", { pod_sandbox_id: id });
  });

  void it("sets the bridge up again when it was deleted, with the pods' veths back on it", async () => {
    const id = await runPod(client, podConfig("rebridge"));
    const ref = await refOf(client, id);
    const ip = (((await podStatus(client, id)).status as Message).network as Message).ip as string;
    await echoServerIn(ref.namespaces.network!, "0.0.0.0", 7200);
    await run("ip", ["link", "del", net.bridge]);
    const answer = await call(client, "Status", {});
    const conditions = (answer.status as { conditions: Message[] }).conditions;
    assert.deepEqual(conditions[1], { type: "NetworkReady", status: true, reason: "", message: "" });
    assert.equal(await echo(ip, 7200, "back again"), "back again");
    await call(client, "RemovePodSandbox", { pod_sandbox_id: id });
  });

  void it("maps a host port to the pod, and refuses a host port in use", async () => {
    const hostPort = await freePort();
    const id = await runPod(
      client,
      podConfig("ports", { port_mappings: [{ protocol: "TCP", container_port: 8080, host_port: hostPort }] }),
    );
    const ref = await refOf(client, id);
    await echoServerIn(ref.namespaces.network!, "0.0.0.0", 8080);
    assert.equal(await echo("127.0.0.1", hostPort, "through the proxy"), "through the proxy");

    const before = await readdir(pods.directory);
    const error = await refusal(
      runPod(
        client,
        podConfig("clash", { port_mappings: [{ protocol: "TCP", container_port: 80, host_port: hostPort }] }),
      ),
    );
    assert.equal(error.code, status.FAILED_PRECONDITION);
    assert.match(error.details, new RegExp(`host port \\*:${hostPort}/TCP is in use`));
    assert.deepEqual(
      (await listIds(client)).filter((p) => p !== id),
      [],
    );
    // Nothing of the refused pod is left (the pool's sandboxes may have changed meanwhile).
    await within(pods.poolFilled(), { timeoutMs: WAIT_MS, what: "the pool to fill" });
    const left = (await readdir(pods.directory)).filter((d) => !before.includes(d));
    for (const d of left) assert.ok(!existsSync(join(pods.directory, d, "pod.json")), `pod ${d} was left`);

    await call(client, "StopPodSandbox", { pod_sandbox_id: id });
    await assert.rejects(echo("127.0.0.1", hostPort, "x"), /ECONNREFUSED/);
    await call(client, "RemovePodSandbox", { pod_sandbox_id: id });
  });

  void it("keeps two pods apart: own loopback, hostname, IPC and network namespaces", async () => {
    const a = await runPod(client, podConfig("left"));
    const b = await runPod(client, podConfig("right"));
    const [refA, refB] = [await refOf(client, a), await refOf(client, b)];
    for (const kind of ["network", "ipc", "uts"] as const) {
      const [sa, sb] = [await stat(refA.namespaces[kind]!), await stat(refB.namespaces[kind]!)];
      assert.notEqual(sa.ino, sb.ino, `${kind} namespaces differ`);
    }
    const hostNet = await stat("/proc/self/ns/net");
    assert.notEqual((await stat(refA.namespaces.network!)).ino, hostNet.ino);
    await echoServerIn(refA.namespaces.network!, "127.0.0.1", 7100);
    const probe = `require("net").connect(7100,"127.0.0.1").on("connect",()=>{console.log("open");process.exit(0)}).on("error",e=>{console.log(e.code);process.exit(0)})`;
    const inA = await run("nsenter", [
      `--net=${refA.namespaces.network!}`,
      "--",
      process.execPath,
      "-e",
      probe,
    ]);
    const inB = await run("nsenter", [
      `--net=${refB.namespaces.network!}`,
      "--",
      process.execPath,
      "-e",
      probe,
    ]);
    assert.equal(inA.stdout.trim(), "open");
    assert.equal(inB.stdout.trim(), "ECONNREFUSED");
    const { stdout: hb } = await run("nsenter", [`--uts=${refB.namespaces.uts!}`, "hostname"]);
    assert.equal(hb.trim(), "right");
    await call(client, "RemovePodSandbox", { pod_sandbox_id: a });
    await call(client, "RemovePodSandbox", { pod_sandbox_id: b });
  });

  void it("lists pods by id, id prefix, state and label selector", async () => {
    const one = await runPod(client, podConfig("one", { labels: { app: "web", tier: "front" } }));
    const two = await runPod(client, podConfig("two", { labels: { app: "web", tier: "back" } }));
    const three = await runPod(client, podConfig("three", { labels: { app: "db" } }));
    await call(client, "StopPodSandbox", { pod_sandbox_id: three });
    const again = await refusal(runPod(client, podConfig("one", { labels: { app: "web", tier: "front" } })));
    assert.equal(again.code, status.ALREADY_EXISTS);
    assert.deepEqual(await listIds(client), [one, two, three].sort());
    assert.deepEqual(await listIds(client, { label_selector: { app: "web" } }), [one, two].sort());
    assert.deepEqual(await listIds(client, { label_selector: { app: "web", tier: "back" } }), [two]);
    assert.deepEqual(await listIds(client, { label_selector: { app: "none" } }), []);
    assert.deepEqual(await listIds(client, { id: one }), [one]);
    assert.deepEqual(await listIds(client, { id: two.slice(0, 12) }), [two]);
    assert.deepEqual(await listIds(client, { state: { state: "SANDBOX_NOTREADY" } }), [three]);
    assert.deepEqual(await listIds(client, { state: { state: "SANDBOX_READY" } }), [one, two].sort());
    const statsIds = (
      (await call(client, "ListPodSandboxStats", { filter: { label_selector: { app: "web" } } }))
        .stats as Message[]
    )
      .map((s) => (s.attributes as Message).id)
      .sort();
    assert.deepEqual(statsIds, [one, two].sort());
    for (const id of [one, two, three]) await call(client, "RemovePodSandbox", { pod_sandbox_id: id });
    assert.deepEqual(await listIds(client), []);
  });

  void it("stops (idempotently) and removes a pod with everything it held", async () => {
    const id = await runPod(client, podConfig("gone"));
    const ref = await refOf(client, id);
    const veth = `sk${id.slice(0, 13)}`;
    const cgroup = `/sys/fs/cgroup/pids/${daemon.cgroup}/cri/${id}`;
    assert.ok(await linkExists(veth));
    // The containers side's hooks: awaited before the network (stop) and the cgroup (remove) go.
    const hooks: string[] = [];
    pods.onStop(async (podId) => {
      if (podId !== id) return;
      assert.equal(pods.sandbox(id)?.ready, false, "not ready before the containers stop");
      hooks.push(`stop veth:${await linkExists(veth)}`);
    });
    pods.onRemove((podId) => {
      if (podId === id) hooks.push(`remove cgroup:${existsSync(cgroup)}`);
      return Promise.resolve();
    });
    await call(client, "StopPodSandbox", { pod_sandbox_id: id });
    assert.deepEqual(hooks, ["stop veth:true"]);
    const stopped = (await podStatus(client, id)).status as Message;
    assert.equal(stopped.state, "SANDBOX_NOTREADY");
    assert.equal((stopped.network as Message).ip, "");
    assert.equal(await linkExists(veth), false);
    await call(client, "StopPodSandbox", { pod_sandbox_id: id });
    await call(client, "StopPodSandbox", { pod_sandbox_id: "0".repeat(64) });

    assert.ok(existsSync(cgroup));
    await call(client, "RemovePodSandbox", { pod_sandbox_id: id });
    assert.deepEqual(hooks.slice(-1), ["remove cgroup:true"]);
    for (const file of Object.values(ref.namespaces))
      assert.equal(await mounted(file), false, `${file} unmounted`);
    assert.equal(existsSync(join(pods.directory, id)), false);
    assert.equal(existsSync(cgroup), false);
    await call(client, "RemovePodSandbox", { pod_sandbox_id: id });
    const error = await refusal(podStatus(client, id));
    assert.equal(error.code, status.NOT_FOUND);
  });

  void it("runs a host-network pod without network or UTS namespaces, with the host's name and resolv.conf", async () => {
    const id = await runPod(
      client,
      podConfig("hostnet", {
        linux: { security_context: { namespace_options: { network: "NODE", pid: "CONTAINER", ipc: "POD" } } },
      }),
    );
    assert.equal(pods.lastSource, "cold");
    const ref = await refOf(client, id);
    assert.deepEqual(Object.keys(ref.namespaces), ["ipc"]);
    assert.equal((((await podStatus(client, id)).status as Message).network as Message).ip, "");
    assert.equal(await readFile(ref.etcFiles.resolvConf, "utf8"), await readFile("/etc/resolv.conf", "utf8"));
    await call(client, "RemovePodSandbox", { pod_sandbox_id: id });
  });

  void it("refuses hostile or unsupported requests with a clear status and keeps serving", async () => {
    const cases: [Message, number, RegExp][] = [
      [podConfig("x", { hostname: "bad_host!" }), status.INVALID_ARGUMENT, /config\.hostname/],
      [podConfig("x", { hostname: "a".repeat(65) }), status.INVALID_ARGUMENT, /config\.hostname/],
      [
        podConfig("x", { dns_config: { servers: ["8.8.8.8\nnameserver 6.6.6.6"] } }),
        status.INVALID_ARGUMENT,
        /servers\[0\]/,
      ],
      [
        podConfig("x", { dns_config: { searches: ["ok.example", "-bad"] } }),
        status.INVALID_ARGUMENT,
        /searches\[1\]/,
      ],
      [
        podConfig("x", { dns_config: { options: ["ndots:5 rotate"] } }),
        status.INVALID_ARGUMENT,
        /options\[0\]/,
      ],
      [
        podConfig("x", { dns_config: { servers: ["1.1.1.1", "1.0.0.1", "8.8.8.8", "8.8.4.4"] } }),
        status.INVALID_ARGUMENT,
        /more than 3/,
      ],
      [
        podConfig("x", { labels: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, "v"])) }),
        status.INVALID_ARGUMENT,
        /config\.labels: more than 64/,
      ],
      [
        { ...podConfig("x"), metadata: { name: "../../etc", namespace: "n".repeat(300) } },
        status.INVALID_ARGUMENT,
        /metadata\.namespace/,
      ],
      [
        podConfig("x", { linux: { security_context: { namespace_options: { pid: "POD" } } } }),
        status.FAILED_PRECONDITION,
        /shareProcessNamespace/,
      ],
      [
        podConfig("x", { port_mappings: [{ protocol: "UDP", container_port: 53, host_port: 5353 }] }),
        status.FAILED_PRECONDITION,
        /TCP only/,
      ],
    ];
    for (const [config, code, message] of cases) {
      const error = await refusal(runPod(client, config));
      assert.equal(error.code, code, `${error.details}`);
      assert.match(error.details, message);
    }
    assert.equal((await refusal(podStatus(client, "nope"))).code, status.NOT_FOUND);
    assert.deepEqual(await listIds(client), []);
  });
});

void describe("CRI pod sandboxes without a working pod network", () => {
  const net = testPodNetwork();
  let daemon: TestDaemon | undefined;
  let client: Client | undefined;

  after(async () => {
    if (client !== undefined) {
      for (const id of await listIds(client).catch(() => [])) {
        await call(client, "RemovePodSandbox", { pod_sandbox_id: id }).catch(() => undefined);
      }
      client.close();
    }
    await daemon?.stop();
    await net.remove();
  });

  void it("reports NetworkReady false with the reason, runs pods with loopback only, refuses port mappings", async () => {
    // An interface with the bridge's name that is not a bridge: not Skiff's to change.
    await run("ip", ["link", "add", net.bridge, "type", "veth", "peer", "name", `${net.bridge}p`]);
    daemon = await startInProcessDaemon(criConfig(net, 1));
    client = clientFor(daemon.dir);
    const answer = await call(client, "Status", {});
    const condition = (answer.status as { conditions: Message[] }).conditions[1]!;
    assert.equal(condition.status, false);
    assert.equal(condition.reason, "BridgeSetupFailed");
    assert.match(condition.message as string, /is not a bridge \(veth\)/);

    const id = await runPod(client, podConfig("lonely"));
    assert.equal((((await podStatus(client, id)).status as Message).network as Message).ip, "");
    const ref = await refOf(client, id);
    const { stdout } = await run("nsenter", [`--net=${ref.namespaces.network!}`, "ip", "-j", "link", "show"]);
    const links = (JSON.parse(stdout) as { ifname: string; flags: string[] }[]).map((l) => l.ifname);
    assert.deepEqual(links, ["lo"]);
    const error = await refusal(
      runPod(
        client,
        podConfig("mapped", { port_mappings: [{ protocol: "TCP", container_port: 80, host_port: 1 }] }),
      ),
    );
    assert.equal(error.code, status.FAILED_PRECONDITION);
    assert.match(error.details, /pod network is not ready/);
    await call(client, "RemovePodSandbox", { pod_sandbox_id: id });
  });
});

void describe("CRI pod sandboxes across a kill -9 of skiffd", () => {
  const net = testPodNetwork();
  let dir: string;
  let cgroup: string;
  let child: ChildProcess | undefined;
  let client: Client | undefined;

  async function startSkiffd(): Promise<void> {
    const proc = spawn(process.execPath, [SKIFFD, "--config", join(dir, "skiffd.toml")], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    let log = "";
    proc.stderr.on("data", (d: Buffer) => (log += d.toString()));
    child = proc;
    client?.close();
    client = clientFor(dir);
    const probe = client;
    await waitFor(
      async () => {
        if (proc.exitCode !== null) throw new Error(`skiffd exited early:\n${log}`);
        return call(probe, "Version", { version: "0.1.0" }).then(
          () => true,
          () => false,
        );
      },
      { timeoutMs: 90_000, what: "skiffd's CRI endpoint", intervalMs: 100, detail: () => log.slice(-3000) },
    );
  }

  async function killSkiffd(signal: NodeJS.Signals): Promise<void> {
    const proc = child;
    if (proc === undefined || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((resolve) => proc.once("exit", resolve));
    proc.kill(signal);
    await within(exited, { timeoutMs: 60_000, what: `skiffd to exit after ${signal}` });
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "skiff-test-"));
    cgroup = testCgroupName();
    await writeFile(join(dir, "skiffd.toml"), testConfigText(dir, cgroup, criConfig(net, 1)));
  });

  after(async () => {
    if (client !== undefined) {
      for (const id of await listIds(client).catch(() => [])) {
        await call(client, "RemovePodSandbox", { pod_sandbox_id: id }).catch(() => undefined);
      }
      client.close();
    }
    await killSkiffd("SIGTERM");
    await cleanupDaemon({ dir, cgroup });
    await net.remove();
  });

  void it("finds its pods whole after a kill -9: same ids, states, namespaces; a prepared sandbox and a pod with a broken record removed", async () => {
    await startSkiffd();
    const c1 = client!;
    const ready = await runPod(c1, podConfig("survivor", { labels: { keep: "yes" } }));
    const stopped = await runPod(c1, podConfig("sleeper"));
    await call(c1, "StopPodSandbox", { pod_sandbox_id: stopped });
    const broken = await runPod(c1, podConfig("broken"));
    const brokenRef = await refOf(c1, broken);
    const refBefore = await refOf(c1, ready);
    const ipBefore = ((await podStatus(c1, ready)).status as Message).network as Message;
    const podsDir = join(dir, "state", "data", "cri", "pods");
    // The pool's prepared sandbox of the first daemon: garbage for the second.
    await waitFor(async () => (await readdir(podsDir)).length === 4, {
      timeoutMs: WAIT_MS,
      what: "the pool to fill",
    });
    const prepared = (await readdir(podsDir)).filter((d) => d !== ready && d !== stopped && d !== broken);
    assert.equal(prepared.length, 1);

    await killSkiffd("SIGKILL");
    assert.ok(await mounted(refBefore.namespaces.network!), "the namespaces outlive the daemon");
    // A record that no longer reads: the pod's leftovers go at the next start.
    await writeFile(join(podsDir, broken, "pod.json"), '{"version": 1, "id": "');
    await startSkiffd();
    const c2 = client!;

    assert.deepEqual(await listIds(c2), [ready, stopped].sort());
    const again = (await podStatus(c2, ready)).status as Message;
    assert.equal(again.state, "SANDBOX_READY");
    assert.deepEqual(again.network, ipBefore);
    assert.deepEqual(again.labels, { keep: "yes" });
    assert.deepEqual((await refOf(c2, ready)).namespaces, refBefore.namespaces);
    assert.equal(((await podStatus(c2, stopped)).status as Message).state, "SANDBOX_NOTREADY");
    const { stdout } = await run("nsenter", [`--uts=${refBefore.namespaces.uts!}`, "hostname"]);
    assert.equal(stdout.trim(), "survivor");
    assert.equal(existsSync(join(podsDir, prepared[0]!)), false, "the old pool's sandbox is removed");
    assert.equal(await linkExists(`sk${prepared[0]!.slice(0, 13)}`), false);
    assert.equal(existsSync(join(podsDir, broken)), false, "the pod with a broken record is removed");
    assert.equal(await mounted(brokenRef.namespaces.network!), false);
    assert.equal(await linkExists(`sk${broken.slice(0, 13)}`), false);
    assert.equal(existsSync(`/sys/fs/cgroup/pids/${cgroup}/cri/${broken}`), false);

    for (const id of [ready, stopped]) await call(c2, "RemovePodSandbox", { pod_sandbox_id: id });
    assert.equal(await mounted(refBefore.namespaces.network!), false);
    assert.equal(await linkExists(`sk${ready.slice(0, 13)}`), false);
  });
});
