import assert from "node:assert/strict";
import { describe, it } from "node:test";
import pino from "pino";
import { CriContainers, type CriDaemon } from "../../../src/cri/containers/index.js";
import type { CriContainerRecord } from "../../../src/cri/containers/records.js";

const ID = "ab".repeat(32);
const RECORD: CriContainerRecord = {
  id: ID,
  podSandboxId: "cd".repeat(32),
  skiffId: "cri_web_app_abababababab:0.0.0",
  metadata: { name: "app", attempt: 0 },
  image: "127.0.0.1:5000/box:1",
  imageRef: "sha256:" + "e".repeat(64),
  labels: {},
  annotations: {},
  logPathRequested: "app/0.log",
  manifest: { name: "cri_web_app_abababababab", version: "0.0.0", init: "/bin/sh", uid: 1, gid: 1 },
  cri: {
    id: ID,
    podSandboxId: "cd".repeat(32),
    dir: `/data/cri/containers/${ID}`,
    imageRootfs: "/data/cri/images/e/rootfs",
    logPath: "/var/log/pods/p/app/0.log",
    env: {},
    uid: 0,
    gid: 0,
    additionalGids: [],
    readonlyRootfs: false,
    namespaces: { network: "/run/skiff/pods/p/net" },
    cgroupParent: "cri/p",
    hostname: "p",
    mounts: [],
    resources: {},
  },
  createdAt: "1",
};

/** The state side as the lookups read it: only `process` is asked. */
function containersWith(process: ReturnType<CriDaemon["process"]>): CriContainers {
  const daemon = { process: () => process } as unknown as CriDaemon;
  return new CriContainers(
    {
      criDir: "/data/cri",
      daemon,
      pods: { sandbox: () => undefined },
      image: () => undefined,
      log: pino({ level: "silent" }),
    },
    [RECORD],
  );
}

void describe("what the streaming server and the image store ask of CRI containers", () => {
  void it("gives a running container's Skiff id, pid, network namespace and log", () => {
    const c = containersWith({ phase: "running", pid: 4242 });
    assert.deepEqual(c.target(ID), {
      skiffId: RECORD.skiffId,
      running: true,
      pid: 4242,
      netns: "/run/skiff/pods/p/net",
      logPath: "/var/log/pods/p/app/0.log",
    });
    assert.equal(c.target("0".repeat(64)), undefined);
    assert.equal(c.lookup(ID)?.skiffId, RECORD.skiffId);
  });

  void it("says when a container does not run, and which container holds an image", () => {
    const c = containersWith(undefined);
    assert.equal(c.target(ID)?.running, false);
    assert.equal(c.target(ID)?.pid, undefined);
    assert.equal(c.usingImage(RECORD.imageRef), ID);
    assert.equal(c.usingImage("sha256:" + "f".repeat(64)), undefined);
    assert.deepEqual(c.containersOf(RECORD.podSandboxId), [ID]);
  });

  void it("names a container by its full id or a unique prefix (crictl's short ids)", () => {
    const other: CriContainerRecord = { ...RECORD, id: "ac".repeat(32) };
    const daemon = { process: () => undefined } as unknown as CriDaemon;
    const c = new CriContainers(
      {
        criDir: "/data/cri",
        daemon,
        pods: { sandbox: () => undefined },
        image: () => undefined,
        log: pino({ level: "silent" }),
      },
      [RECORD, other],
    );
    assert.equal(c.fullId(ID), ID);
    assert.equal(c.fullId(ID.slice(0, 13)), ID);
    assert.equal(c.fullId("ac"), other.id);
    assert.equal(c.fullId("a"), "a", "ambiguous: unchanged");
    assert.equal(c.fullId(""), "");
    assert.equal(c.fullId("ff"), "ff", "unknown: unchanged");
  });
});
