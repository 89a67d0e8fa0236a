import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  CriConfigError,
  DEFAULT_CAPABILITIES,
  needsAccounts,
  skiffNameOf,
  translateConfig,
  updatedResources,
} from "../../../src/cri/containers/config.js";
import { filterOf, matches } from "../../../src/cri/containers/filters.js";
import { nameProblem } from "../../../src/protocol/container.js";
import type { PodSandboxRef } from "../../../src/cri/sandbox.js";

const ID = "ab".repeat(32);
const POD: PodSandboxRef = {
  id: "cd".repeat(32),
  metadata: { name: "web", namespace: "default", uid: "u", attempt: 0 },
  namespaces: { network: "/run/skiff/netns/p", ipc: "/run/skiff/ipcns/p", uts: "/run/skiff/utsns/p" },
  cgroupParent: "cri/pod1",
  hostname: "web",
  etcFiles: { hosts: "/p/hosts", resolvConf: "/p/resolv.conf", hostname: "/p/hostname" },
  logDirectory: "/var/log/pods/default_web_u",
  runtimeHandler: "",
  ready: true,
};
const INPUT = {
  id: ID,
  pod: POD,
  dir: `/data/cri/containers/${ID}`,
  image: {
    id: "sha256:" + "e".repeat(64),
    rootfs: "/data/cri/images/e/rootfs",
    user: "",
    process: {
      entrypoint: ["/entry"],
      cmd: ["default"],
      env: ["PATH=/img/bin", "IMG=1", "A=image"],
      workingDir: "/img",
    },
  },
};

function config(more: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    metadata: { name: "app", attempt: 2 },
    command: ["/bin/sh"],
    args: ["-c", "exit 0"],
    log_path: "app/2.log",
    ...more,
  };
}

function refused(more: Record<string, unknown>, pattern: RegExp, input = INPUT): void {
  assert.throws(
    () => translateConfig(config(more), input),
    (e: unknown) => e instanceof CriConfigError && pattern.test(e.message),
  );
}

void describe("CRI ContainerConfig → manifest and CRI part", () => {
  void it("makes a Northstar-valid manifest and keeps CRI data beside it", () => {
    const t = translateConfig(
      config({
        envs: [{ key: "A", value: Buffer.from("1") }],
        working_dir: "/srv",
        labels: { app: "x" },
        annotations: { note: "y" },
        mounts: [{ container_path: "/data/", host_path: "/tmp", readonly: true }],
        linux: {
          resources: {
            cpu_shares: "512",
            cpu_quota: "50000",
            cpu_period: "100000",
            memory_limit_in_bytes: String(64 << 20),
            oom_score_adj: "-997",
            cpuset_cpus: "0-1",
          },
          security_context: {
            run_as_user: { value: "1000" },
            run_as_group: { value: "2000" },
            supplemental_groups: ["3"],
            readonly_rootfs: true,
          },
        },
      }),
      INPUT,
    );
    assert.equal(nameProblem(t.manifest.name), undefined);
    assert.equal(t.manifest.name, `cri_web_app_${ID.slice(0, 12)}`);
    assert.equal(t.manifest.version, "0.0.2");
    assert.equal(t.manifest.init, "/bin/sh");
    assert.deepEqual(t.manifest.args, ["-c", "exit 0"]);
    assert.deepEqual([t.manifest.uid, t.manifest.gid], [1000, 2000]);
    assert.equal(t.manifest.env, undefined, "CRI env stays out of the manifest");
    assert.deepEqual(Object.keys(t.manifest).sort(), [
      "args",
      "capabilities",
      "gid",
      "init",
      "mounts",
      "name",
      "uid",
      "version",
    ]);
    assert.deepEqual(t.cri.env, { PATH: "/img/bin", IMG: "1", A: "1" });
    assert.equal(t.cri.workingDir, "/srv");
    assert.equal(t.cri.logPath, "/var/log/pods/default_web_u/app/2.log");
    assert.deepEqual(t.cri.mounts, [{ containerPath: "/data", hostPath: "/tmp", readonly: true }]);
    assert.deepEqual(t.cri.resources, {
      cpuShares: 512,
      cpuQuota: 50000,
      cpuPeriod: 100000,
      memoryLimitBytes: 64 << 20,
      cpusetCpus: "0-1",
    });
    assert.deepEqual(
      [t.cri.uid, t.cri.gid, t.cri.additionalGids, t.cri.readonlyRootfs],
      [1000, 2000, [3], true],
    );
    assert.deepEqual(t.cri.namespaces, POD.namespaces);
    assert.equal(t.cri.oomScoreAdj, -997);
    assert.equal(t.cri.cgroupParent, "cri/pod1");
    assert.deepEqual(t.labels, { app: "x" });
    assert.deepEqual(t.metadata, { name: "app", attempt: 2 });
  });

  void it("takes the image's Entrypoint, Cmd, Env and WorkingDir where the config names none", () => {
    const image = translateConfig(config({ command: [], args: [] }), INPUT);
    assert.deepEqual([image.manifest.init, image.manifest.args], ["/entry", ["default"]]);
    assert.equal(image.cri.workingDir, "/img");
    assert.deepEqual(image.cri.env, { PATH: "/img/bin", IMG: "1", A: "image" });
    const args = translateConfig(
      config({ command: [], args: ["mine"], envs: [{ key: "A", value: Buffer.from("cri") }] }),
      INPUT,
    );
    assert.deepEqual([args.manifest.init, args.manifest.args], ["/entry", ["mine"]]);
    assert.equal(args.cri.env.A, "cri");
    const command = translateConfig(config({ command: ["/cmd"], args: [] }), INPUT);
    assert.deepEqual([command.manifest.init, command.manifest.args], ["/cmd", []]);
  });

  void it("runs as root when CRI says so, the manifest showing uid 1 (Northstar has no root)", () => {
    const bare = {
      ...INPUT,
      image: { ...INPUT.image, process: { entrypoint: [], cmd: [], env: [], workingDir: "" } },
    };
    const t = translateConfig(config(), bare);
    assert.equal(t.cri.env.PATH, "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    assert.deepEqual([t.cri.uid, t.cri.gid], [0, 0]);
    assert.deepEqual([t.manifest.uid, t.manifest.gid], [1, 1]);
    assert.deepEqual(t.manifest.capabilities, [...DEFAULT_CAPABILITIES].sort());
  });

  void it("takes the image's user, by id or by name from its accounts, and run_as_username", () => {
    const t = translateConfig(config(), { ...INPUT, image: { ...INPUT.image, user: "7:8" } });
    assert.deepEqual([t.cri.uid, t.cri.gid], [7, 8]);
    const accounts = {
      passwd: [
        { name: "nginx", uid: 101, gid: 102 },
        { name: "app", uid: 1000, gid: 1000 },
      ],
      groups: [{ name: "staff", gid: 50 }],
    };
    const named = { ...INPUT, image: { ...INPUT.image, user: "nginx" }, accounts };
    assert.deepEqual(
      [translateConfig(config(), named).cri.uid, translateConfig(config(), named).cri.gid],
      [101, 102],
    );
    const group = { ...named, image: { ...INPUT.image, user: "app:staff" } };
    assert.deepEqual(
      [translateConfig(config(), group).cri.uid, translateConfig(config(), group).cri.gid],
      [1000, 50],
    );
    const byName = translateConfig(
      config({ linux: { security_context: { run_as_username: "app" } } }),
      named,
    );
    assert.deepEqual([byName.cri.uid, byName.cri.gid], [1000, 1000]);
    const byId = translateConfig(
      config({ linux: { security_context: { run_as_user: { value: "101" } } } }),
      named,
    );
    assert.deepEqual([byId.cri.uid, byId.cri.gid], [101, 102]);
    refused({}, /not in the image's \/etc\/passwd/, { ...INPUT, image: { ...INPUT.image, user: "ghost" } });
    refused({}, /not in the image's \/etc\/group/, {
      ...named,
      image: { ...INPUT.image, user: "app:ghosts" },
    });
    assert.equal(needsAccounts(config(), "nginx"), true);
    assert.equal(needsAccounts(config(), "1:2"), false);
    assert.equal(
      needsAccounts(config({ linux: { security_context: { run_as_user: { value: "1" } } } }), "nginx"),
      false,
    );
  });

  void it("adds and drops capabilities", () => {
    const t = translateConfig(
      config({
        linux: {
          security_context: {
            capabilities: { add_capabilities: ["NET_ADMIN"], drop_capabilities: ["CAP_KILL", "mknod"] },
          },
        },
      }),
      INPUT,
    );
    assert.ok(t.manifest.capabilities?.includes("CAP_NET_ADMIN"));
    assert.ok(!t.manifest.capabilities?.includes("CAP_KILL"));
    assert.ok(!t.manifest.capabilities?.includes("CAP_MKNOD"));
    const none = translateConfig(
      config({ linux: { security_context: { capabilities: { drop_capabilities: ["ALL"] } } } }),
      INPUT,
    );
    assert.deepEqual(none.manifest.capabilities, []);
    refused(
      { linux: { security_context: { capabilities: { add_capabilities: ["CAP_NOPE"] } } } },
      /unknown capability/,
    );
  });

  void it("refuses what Skiff cannot do safely, with the reason", () => {
    refused({ log_path: "../x.log" }, /leaves the pod's log directory/);
    refused({ log_path: "/abs.log" }, /leaves the pod's log directory/);
    refused({ linux: { security_context: { privileged: true } } }, /privileged/);
    refused({ linux: { security_context: { namespace_options: { pid: "NODE" } } } }, /PID namespace/);
    refused({ mounts: [{ container_path: "rel", host_path: "/tmp" }] }, /not an absolute path/);
    refused({ mounts: [{ container_path: "/a/../b", host_path: "/tmp" }] }, /holds \. or \.\./);
    refused(
      { mounts: [{ container_path: "/a", host_path: "/tmp", propagation: "PROPAGATION_HOST_TO_CONTAINER" }] },
      /propagation/,
    );
    refused({ devices: [{ host_path: "/dev/sda" }] }, /devices/);
    refused({ tty: true }, /tty/);
    refused({ command: [], args: [] }, /no command/, {
      ...INPUT,
      image: { ...INPUT.image, process: { entrypoint: [], cmd: [], env: [], workingDir: "" } },
    });
    refused({ linux: { resources: { memory_limit_in_bytes: "1024" } } }, /at least 6 MiB/);
    refused({ linux: { resources: { cpu_shares: "-1" } } }, /outside/);
    refused({ linux: { resources: { cpuset_cpus: "0;rm" } } }, /CPU list/);
    refused({ working_dir: "relative" }, /not an absolute path/);
    refused({ linux: { resources: { oom_score_adj: "1001" } } }, /oom_score_adj/);
  });

  void it("bounds sizes and counts before it builds anything", () => {
    refused(
      { envs: Array.from({ length: 1025 }, (_, i) => ({ key: `K${i}`, value: Buffer.from("") })) },
      /more than 1024/,
    );
    refused({ args: Array.from({ length: 1025 }, () => "a") }, /more than 1024/);
    refused(
      { labels: Object.fromEntries(Array.from({ length: 257 }, (_, i) => [`k${i}`, "v"])) },
      /more than 256/,
    );
    refused({ args: ["x".repeat(70_000)] }, /longer than/);
    refused({ annotations: { big: "x".repeat(1100 * 1024) } }, /larger than/);
    refused({ envs: [{ key: "A=B", value: Buffer.from("") }] }, /"="/);
  });

  void it("names containers in the one name rule whatever the metadata says", () => {
    const name = skiffNameOf("pod/../ä", "c:1 2", ID);
    assert.equal(nameProblem(name), undefined);
    assert.equal(skiffNameOf("..", ".", ID), `cri_x_x_${ID.slice(0, 12)}`);
  });

  void it("reads UpdateContainerResources' linux resources", () => {
    assert.deepEqual(updatedResources({ memory_limit_in_bytes: String(32 << 20), cpu_quota: "0" }), {
      memoryLimitBytes: 32 << 20,
    });
  });
});

void describe("ListContainers filters", () => {
  const c = {
    id: "abc123",
    podSandboxId: "pod9",
    state: "CONTAINER_RUNNING" as const,
    labels: { app: "a", tier: "x" },
  };
  void it("matches by id or prefix, pod, state and every selector label", () => {
    assert.ok(matches(filterOf(null), c));
    assert.ok(matches(filterOf({ id: "abc" }), c));
    assert.ok(!matches(filterOf({ id: "abd" }), c));
    assert.ok(matches(filterOf({ pod_sandbox_id: "pod9" }), c));
    assert.ok(!matches(filterOf({ pod_sandbox_id: "pod8" }), c));
    assert.ok(matches(filterOf({ state: { state: "CONTAINER_RUNNING" } }), c));
    assert.ok(!matches(filterOf({ state: { state: "CONTAINER_EXITED" } }), c));
    assert.ok(matches(filterOf({ label_selector: { app: "a", tier: "x" } }), c));
    assert.ok(!matches(filterOf({ label_selector: { app: "a", tier: "y" } }), c));
  });
});
