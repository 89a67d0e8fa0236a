// The pure parts of pod sandboxes: request validation, /etc files, list filters, the pod CIDR,
// pod cgroup limits, the pool's bookkeeping and the records on disk.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { status } from "@grpc/grpc-js";
import { pino } from "pino";
import {
  allocateAddress,
  formatIpv4,
  gatewayOf,
  interfaceNameProblem,
  parseCidr,
  parseIpv4,
  podAddressCount,
  type Ipv4Cidr,
} from "../../../src/common/ipv4.js";
import { podLimits } from "../../../src/cri/pods/cgroup.js";
import { PodError } from "../../../src/cri/pods/errors.js";
import { renderHostname, renderHosts, renderResolvConf } from "../../../src/cri/pods/etc-files.js";
import { matchesFilter, readFilter } from "../../../src/cri/pods/filter.js";
import { SandboxPool, type PreparedSandbox } from "../../../src/cri/pods/pool.js";
import { Slots } from "../../../src/cri/pods/slots.js";
import {
  MAX_RECORD_BYTES,
  parseRecord,
  serializeRecord,
  type PodRecord,
} from "../../../src/cri/pods/record.js";
import { domainProblem, hostnameProblem, podResources, readPodSpec } from "../../../src/cri/pods/spec.js";

type Message = Record<string, unknown>;

const request = (config: Message, extra: Message = {}): Message => ({
  config: { metadata: { name: "web", namespace: "default", uid: "u1", attempt: 1 }, ...config },
  ...extra,
});

function refused(config: Message, code: status, message: RegExp): void {
  assert.throws(
    () => readPodSpec(request(config)),
    (e: unknown) => e instanceof PodError && e.code === code && message.test(e.message),
  );
}

void describe("pod sandbox requests", () => {
  void it("reads a kubelet's request: names, DNS, ports, labels, modes, resources", () => {
    const spec = readPodSpec(
      request(
        {
          hostname: "web-0",
          log_directory: "/var/log/pods/default_web_u1",
          dns_config: {
            servers: ["10.96.0.10", "fd00::a"],
            searches: ["default.svc.cluster.local."],
            options: ["ndots:5", "edns0"],
          },
          port_mappings: [
            { protocol: "TCP", container_port: 80, host_port: 8080, host_ip: "" },
            { protocol: "TCP", container_port: 9090, host_port: 0, host_ip: "" },
          ],
          labels: { app: "web" },
          annotations: { "kubernetes.io/config.source": "api" },
          linux: {
            security_context: { namespace_options: { network: "POD", pid: "CONTAINER", ipc: "POD" } },
            resources: {
              memory_limit_in_bytes: "1000",
              cpu_shares: "100",
              cpu_quota: "50000",
              cpu_period: "100000",
            },
            overhead: {
              memory_limit_in_bytes: "24",
              cpu_shares: "2",
              cpu_quota: "5000",
              cpu_period: "50000",
            },
          },
        },
        { runtime_handler: "crun" },
      ),
    );
    assert.deepEqual(spec.metadata, { name: "web", namespace: "default", uid: "u1", attempt: 1 });
    assert.equal(spec.hostname, "web-0");
    assert.deepEqual(spec.holds, { network: true, ipc: true, uts: true });
    assert.deepEqual(spec.portMappings, [{ protocol: "TCP", containerPort: 80, hostPort: 8080, hostIp: "" }]);
    assert.deepEqual(spec.resources, {
      memoryLimit: 1024,
      cpuShares: 102,
      cpuQuota: 60000,
      cpuPeriod: 100000,
    });
    assert.equal(spec.runtimeHandler, "crun");
    assert.deepEqual(spec.dns?.servers, ["10.96.0.10", "fd00::a"]);
  });

  void it("defaults: hostname from the pod name, PID CONTAINER without namespace options, host's resolv.conf", () => {
    const spec = readPodSpec(request({}));
    assert.equal(spec.hostname, "web");
    assert.equal(spec.modes.pid, "CONTAINER");
    assert.equal(spec.dns, undefined);
  });

  void it("host network: no network or UTS namespace, no hostname of its own", () => {
    const spec = readPodSpec(
      request({
        linux: { security_context: { namespace_options: { network: "NODE", pid: "NODE", ipc: "NODE" } } },
      }),
    );
    assert.deepEqual(spec.holds, { network: false, ipc: false, uts: false });
    assert.equal(spec.hostname, "");
  });

  void it("keeps label keys such as __proto__ as data", () => {
    const labels = JSON.parse('{"__proto__": "x", "a": "b"}') as Message;
    const spec = readPodSpec(request({ labels }));
    assert.deepEqual(Object.keys(spec.labels), ["__proto__", "a"]);
    assert.equal(Object.getPrototypeOf(spec.labels), Object.prototype);
  });

  void it("refuses hostile and unsupported requests", () => {
    const I = status.INVALID_ARGUMENT;
    const P = status.FAILED_PRECONDITION;
    refused({ hostname: "a_b" }, I, /config\.hostname/);
    refused({ hostname: `${"a".repeat(60)}.abcde` }, I, /64 bytes/);
    refused({ metadata: { name: "" } }, I, /metadata\.name: empty/);
    refused({ metadata: { name: "x", uid: "u\nv" } }, I, /control characters/);
    refused({ log_directory: "relative" }, I, /log_directory/);
    refused({ log_directory: "/var/log/../../etc" }, I, /log_directory/);
    refused({ dns_config: { servers: ["999.1.1.1"] } }, I, /servers\[0\]/);
    refused({ dns_config: { searches: ["a..b"] } }, I, /searches\[0\]/);
    refused({ dns_config: { searches: Array.from({ length: 33 }, () => "a.b") } }, I, /more than 32/);
    refused({ dns_config: { options: ["ndots:5\nnameserver 1.2.3.4"] } }, I, /options\[0\]/);
    refused({ port_mappings: [{ protocol: "TCP", container_port: 0, host_port: 80 }] }, I, /container_port/);
    refused({ port_mappings: [{ protocol: "TCP", container_port: 1, host_port: 70000 }] }, I, /host_port/);
    refused(
      {
        port_mappings: [
          { protocol: "TCP", container_port: 1, host_port: 80 },
          { protocol: "TCP", container_port: 2, host_port: 80 },
        ],
      },
      I,
      /mapped twice/,
    );
    refused({ port_mappings: [{ protocol: "SCTP", container_port: 1, host_port: 80 }] }, P, /TCP only/);
    refused({ annotations: { big: "x".repeat(256 * 1024 + 1) } }, I, /annotations/);
    refused(
      { linux: { security_context: { namespace_options: { pid: "POD" } } } },
      P,
      /shareProcessNamespace/,
    );
    refused({ linux: { security_context: { namespace_options: { network: "TARGET" } } } }, P, /TARGET/);
    refused(
      {
        linux: {
          security_context: { namespace_options: { pid: "CONTAINER", userns_options: { mode: "POD" } } },
        },
      },
      P,
      /user namespaces/,
    );
    refused({ linux: { sysctls: { "net.ipv4.ip_forward": "1" } } }, P, /sysctls/);
    refused({ linux: { resources: { memory_limit_in_bytes: "-5" } } }, I, /negative/);
    refused({ linux: { resources: { cpuset_cpus: "0-1;rm" } } }, I, /cpuset/);
    refused(
      {
        linux: { security_context: { namespace_options: { network: "NODE", pid: "CONTAINER" } } },
        port_mappings: [{ protocol: "TCP", container_port: 1, host_port: 80 }],
      },
      P,
      /own network/,
    );
    assert.throws(() => readPodSpec({}), /config: missing/);
  });

  void it("checks hostnames and search domains strictly", () => {
    assert.equal(hostnameProblem("web-0.default"), undefined);
    assert.notEqual(hostnameProblem("-web"), undefined);
    assert.notEqual(hostnameProblem("web "), undefined);
    assert.equal(domainProblem("svc.cluster.local."), undefined);
    assert.notEqual(domainProblem("."), undefined);
    assert.notEqual(domainProblem("a b"), undefined);
  });

  void it("adds the runtime overhead only to limits the pod sets", () => {
    assert.deepEqual(podResources({ overhead: { memory_limit_in_bytes: "10" } }), {});
    assert.deepEqual(podResources({ resources: { memory_limit_in_bytes: "10" } }), { memoryLimit: 10 });
  });
});

void describe("pod /etc files", () => {
  void it("renders hostname, hosts and resolv.conf", () => {
    assert.equal(renderHostname("web"), "web\n");
    assert.equal(
      renderHosts("web", "10.87.0.5"),
      "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n10.87.0.5\tweb\n",
    );
    assert.match(renderHosts("web", undefined), /^127\.0\.1\.1\tweb$/m);
    assert.equal(
      renderResolvConf({ servers: ["10.96.0.10"], searches: ["a.svc", "svc"], options: ["ndots:5"] }),
      "search a.svc svc\nnameserver 10.96.0.10\noptions ndots:5\n",
    );
    assert.equal(
      renderResolvConf({ servers: ["1.1.1.1"], searches: [], options: [] }),
      "nameserver 1.1.1.1\n",
    );
  });
});

void describe("pod list filters", () => {
  const pod = { id: "abcdef", state: "ready" as const, labels: { app: "web", tier: "front" } };
  void it("match by id prefix, state and every label of the selector", () => {
    assert.ok(matchesFilter(pod, readFilter(null)));
    assert.ok(matchesFilter(pod, readFilter({ id: "abc" })));
    assert.ok(!matchesFilter(pod, readFilter({ id: "abd" })));
    assert.ok(matchesFilter(pod, readFilter({ state: { state: "SANDBOX_READY" } })));
    assert.ok(!matchesFilter(pod, readFilter({ state: { state: "SANDBOX_NOTREADY" } })));
    assert.ok(matchesFilter(pod, readFilter({ label_selector: { app: "web", tier: "front" } })));
    assert.ok(!matchesFilter(pod, readFilter({ label_selector: { app: "web", tier: "back" } })));
    assert.ok(!matchesFilter(pod, readFilter({ label_selector: { toString: "x" } })));
  });
});

void describe("the pod CIDR", () => {
  const cidr = parseCidr("10.87.0.0/29") as Ipv4Cidr;
  void it("parses and refuses CIDRs", () => {
    assert.deepEqual(parseCidr("10.87.0.0/16"), { network: parseIpv4("10.87.0.0"), prefix: 16 });
    assert.match(parseCidr("10.87.0.1/16") as string, /host bits/);
    assert.match(parseCidr("10.87.0.0/30") as string, /prefix/);
    assert.match(parseCidr("10.087.0.0/16") as string, /not an IPv4 CIDR/);
    assert.match(parseCidr("fd00::/64") as string, /not an IPv4 CIDR/);
    assert.equal(formatIpv4(parseIpv4("255.1.2.3")!), "255.1.2.3");
  });

  void it("allocates every pod address once, never the network, gateway or broadcast address", () => {
    assert.equal(gatewayOf(cidr), "10.87.0.1");
    assert.equal(podAddressCount(cidr), 5);
    const used = new Set<string>();
    for (let i = 0; i < 5; i++) used.add(allocateAddress(cidr, used, () => 0.99)!);
    assert.deepEqual([...used].sort(), ["10.87.0.2", "10.87.0.3", "10.87.0.4", "10.87.0.5", "10.87.0.6"]);
    assert.equal(allocateAddress(cidr, used), undefined);
  });

  void it("checks interface names", () => {
    assert.equal(interfaceNameProblem("skiff0"), undefined);
    assert.notEqual(interfaceNameProblem("a".repeat(16)), undefined);
    assert.notEqual(interfaceNameProblem("br/0"), undefined);
  });
});

void describe("pod cgroup limits", () => {
  void it("writes what the pod sets, and resets what an update leaves out", () => {
    assert.deepEqual(podLimits({ memoryLimit: 100, cpuShares: 512 }), {
      memory: { limit: 100 },
      cpu: { shares: 512 },
    });
    assert.deepEqual(podLimits({}, true), { memory: { limit: -1 }, cpu: { quota: -1 } });
  });
});

void describe("the sandbox pool", () => {
  void it("fills to its size, hands out prepared sandboxes, refills and discards what is left at close", async () => {
    let made = 0;
    const discarded: string[] = [];
    const pool = new SandboxPool(
      2,
      () => Promise.resolve<PreparedSandbox>({ id: String(++made), ip: undefined }),
      (s) => {
        discarded.push(s.id);
        return Promise.resolve();
      },
      pino({ level: "silent" }),
    );
    pool.refill();
    await pool.filled();
    assert.equal(pool.size(), 2);
    assert.equal(pool.take()?.id, "1");
    assert.equal(pool.size(), 1);
    pool.refill();
    await pool.filled();
    assert.equal(pool.size(), 2);
    await pool.close();
    assert.deepEqual(discarded, ["2", "3"]);
    pool.refill();
    assert.equal(pool.size(), 0);
  });

  void it("stops refilling after a failed preparation until asked again", async () => {
    let calls = 0;
    const pool = new SandboxPool(
      3,
      () =>
        ++calls === 2
          ? Promise.reject(new Error("no"))
          : Promise.resolve({ id: String(calls), ip: undefined }),
      () => Promise.resolve(),
      pino({ level: "silent" }),
    );
    pool.refill();
    await pool.filled();
    assert.equal(pool.size(), 1);
    pool.refill();
    await pool.filled();
    assert.equal(pool.size(), 3);
    await pool.close();
  });
});

void describe("pod records on disk", () => {
  const id = "ab".repeat(32);
  const record: PodRecord = {
    id,
    metadata: { name: "web", namespace: "default", uid: "u", attempt: 2 },
    createdAt: "1700000000000000000",
    state: "ready",
    labels: { app: "web" },
    annotations: {},
    runtimeHandler: "",
    hostname: "web",
    logDirectory: "/var/log/pods/x",
    dns: { servers: ["10.96.0.10"], searches: [], options: [] },
    portMappings: [{ protocol: "TCP", containerPort: 80, hostPort: 8080, hostIp: "" }],
    holds: { network: true, ipc: true, uts: true },
    modes: { network: "POD", pid: "CONTAINER", ipc: "POD" },
    resources: { memoryLimit: 1024 },
    ip: "10.87.0.7",
  };

  void it("reads back what it wrote", () => {
    assert.deepEqual(parseRecord(serializeRecord(record), id), record);
    const stopped = { ...record, state: "notready" as const, ip: undefined, dns: undefined };
    assert.deepEqual(parseRecord(serializeRecord(stopped), id), stopped);
  });

  void it("refuses what does not fit, with the reason", () => {
    const broken = (change: Message): string =>
      parseRecord(JSON.stringify({ ...JSON.parse(serializeRecord(record)), ...change }), id) as string;
    assert.match(broken({ version: 2 }), /version/);
    assert.match(broken({ id: "cd".repeat(32) }), /id/);
    assert.match(broken({ state: "running" }), /state/);
    assert.match(broken({ ip: "10.87.0.300" }), /ip/);
    assert.match(broken({ hostname: "a b" }), /hostname/);
    assert.match(broken({ logDirectory: "var/log" }), /logDirectory/);
    assert.match(broken({ logDirectory: "/var/log/../../etc" }), /logDirectory/);
    assert.match(broken({ labels: { a: 1 } }), /labels\.a/);
    assert.match(broken({ holds: { network: "yes", ipc: true, uts: true } }), /holds\.network/);
    assert.match(broken({ portMappings: [{ protocol: "UDP" }] }), /protocol/);
    assert.match(parseRecord("{", id) as string, /JSON/);
    assert.match(parseRecord(" ".repeat(MAX_RECORD_BYTES + 1), id) as string, /larger/);
  });
});

void describe("slots", () => {
  void it("let at most their size run at once, the others in arrival order", async () => {
    const slots = new Slots(2);
    const order: string[] = [];
    let running = 0;
    let most = 0;
    const gates = new Map<string, () => void>();
    const job = (name: string): Promise<void> =>
      slots.run(async () => {
        order.push(name);
        most = Math.max(most, ++running);
        await new Promise<void>((resolve) => gates.set(name, resolve));
        running -= 1;
      });
    const all = ["a", "b", "c", "d"].map(job);
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(order, ["a", "b"]);
    gates.get("b")!();
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(order, ["a", "b", "c"]);
    gates.get("a")!();
    await new Promise((resolve) => setImmediate(resolve));
    gates.get("c")!();
    await new Promise((resolve) => setImmediate(resolve));
    gates.get("d")!();
    await Promise.all(all);
    assert.deepEqual(order, ["a", "b", "c", "d"]);
    assert.equal(most, 2);
    // A failed job gives its slot back: after two failures both slots are free again (a leaked
    // slot would leave the second job below waiting).
    await slots.run(() => Promise.reject(new Error("x"))).catch(() => undefined);
    await slots.run(() => Promise.reject(new Error("y"))).catch(() => undefined);
    let started = 0;
    const both = [1, 2].map(() => slots.run(() => Promise.resolve(++started)));
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(started, 2);
    await Promise.all(both);
  });
});
