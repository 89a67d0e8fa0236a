import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { buildOciSpec } from "../../../src/daemon/oci/spec.js";
import type { CriContainerPart } from "../../../src/daemon/events/data.js";
import { inputFor } from "./fixtures.js";

const CRI: CriContainerPart = {
  id: "ab".repeat(32),
  podSandboxId: "cd".repeat(32),
  dir: "/data/cri/containers/x",
  imageRootfs: "/data/cri/images/y/rootfs",
  env: { PATH: "/bin", A: "1" },
  workingDir: "/srv",
  uid: 0,
  gid: 0,
  additionalGids: [5],
  readonlyRootfs: false,
  oomScoreAdj: 1000,
  namespaces: { network: "/run/netns/p", uts: "/run/utsns/p" },
  cgroupParent: "cri/p",
  hostname: "web",
  etcFiles: { hosts: "/p/hosts", resolvConf: "/p/resolv.conf", hostname: "/p/hostname" },
  mounts: [{ hostPath: "/srv/data", containerPath: "/data", readonly: true }],
  resources: { memoryLimitBytes: 64 << 20, cpuShares: 256 },
};

const YAML =
  "name: cri_a\nversion: 0.0.0\ninit: /bin/sh\nuid: 1\ngid: 1\nmounts:\n  /proc:\n    type: proc\n";

void describe("a CRI container's OCI spec", () => {
  const { spec } = buildOciSpec(
    inputFor(YAML, { cri: CRI, extraEnv: CRI.env, cgroupsPath: "/skiff/cri/p/cri_a" }),
  );

  void it("joins the pod's namespaces by path and has its own PID and mount namespaces", () => {
    assert.deepEqual(spec.linux.namespaces, [
      { type: "pid" },
      { type: "mount" },
      { type: "network", path: "/run/netns/p" },
      { type: "uts", path: "/run/utsns/p" },
    ]);
    assert.equal(spec.hostname, undefined);
  });

  void it("runs with CRI's ids, working directory and env, on a writable root", () => {
    assert.deepEqual(spec.process.user, { uid: 0, gid: 0, additionalGids: [5] });
    assert.equal(spec.process.cwd, "/srv");
    assert.equal(spec.process.oomScoreAdj, 1000);
    assert.ok(spec.process.env.includes("A=1"));
    assert.ok(spec.process.env.includes("PATH=/bin"));
    assert.equal(spec.root.readonly, false);
    assert.equal(spec.linux.cgroupsPath, "/skiff/cri/p/cri_a");
  });

  void it("binds the pod's etc files read-only and CRI's mounts privately", () => {
    const byDest = new Map(spec.mounts.map((m) => [m.destination, m]));
    for (const [dest, source] of [
      ["/etc/hosts", "/p/hosts"],
      ["/etc/resolv.conf", "/p/resolv.conf"],
      ["/etc/hostname", "/p/hostname"],
    ] as const) {
      assert.equal(byDest.get(dest)?.source, source);
      assert.ok(byDest.get(dest)?.options?.includes("ro"));
    }
    assert.deepEqual(byDest.get("/data"), {
      destination: "/data",
      type: "bind",
      source: "/srv/data",
      options: ["rbind", "rprivate", "ro"],
    });
    assert.equal(byDest.get("/sys")?.type, "sysfs");
    assert.equal(byDest.get("/proc")?.type, "proc");
  });

  void it("puts CRI's limits in linux.resources", () => {
    assert.deepEqual(spec.linux.resources.memory, { limit: 64 << 20 });
    assert.deepEqual(spec.linux.resources.cpu, { shares: 256 });
  });
});
