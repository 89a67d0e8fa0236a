import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { initialState, type RuntimeState } from "../../../src/daemon/state/model.js";
import { handleRequest } from "../../../src/daemon/state/requests.js";
import { criContainerAdded, criContainerRemoved, criStartRequested } from "../../../src/daemon/state/cri.js";
import { syntheticPackage } from "../../../src/cri/containers/records.js";
import type { CriContainerPart } from "../../../src/daemon/events/data.js";
import type { Peer } from "../../../src/daemon/events/types.js";
import type { Response } from "../../../src/protocol/messages.js";

const host: Peer = { kind: "extern", address: "test" };
const ID = "cri_web_app_abababababab:0.0.0";
const CRI: CriContainerPart = {
  id: "ab".repeat(32),
  podSandboxId: "cd".repeat(32),
  dir: "/data/cri/containers/ab",
  imageRootfs: "/data/cri/images/e/rootfs",
  env: {},
  uid: 0,
  gid: 0,
  additionalGids: [],
  readonlyRootfs: false,
  namespaces: {},
  cgroupParent: "cri/cd",
  hostname: "web",
  mounts: [],
  resources: {},
};
const PKG = syntheticPackage({
  manifest: { name: "cri_web_app_abababababab", version: "0.0.0", init: "/bin/sh", uid: 1, gid: 1 },
  cri: CRI,
});

/** The state after `transition`, and the responses its steps carry. */
function answers(steps: readonly unknown[]): Response[] {
  return (steps as { response?: Response }[]).flatMap((s) => (s.response ? [s.response] : []));
}

function added(): RuntimeState {
  const t = criContainerAdded(initialState([]), {
    type: "cri_container_added",
    container: ID,
    pkg: PKG,
    reply: () => {},
  });
  return t.state;
}

void describe("CRI containers in the state", () => {
  void it("adds a record once and notifies its install", () => {
    const t = criContainerAdded(initialState([]), {
      type: "cri_container_added",
      container: ID,
      pkg: PKG,
      reply: () => {},
    });
    assert.equal(t.state.containers.get(ID)?.pkg.cri?.id, CRI.id);
    assert.deepEqual(answers(t.steps), [{ type: "install", result: { type: "ok", container: ID } }]);
    assert.ok(t.steps.some((s) => s.type === "notify"));
    const again = criContainerAdded(t.state, {
      type: "cri_container_added",
      container: ID,
      pkg: PKG,
      reply: () => {},
    });
    assert.equal(again.state, t.state);
    assert.deepEqual(answers(again.steps), [
      { type: "install", result: { type: "error", error: { type: "install_duplicate", container: ID } } },
    ]);
  });

  void it("starts it on the kubelet's request with no overrides, and refuses a console start", () => {
    const state = added();
    const t = criStartRequested(state, { type: "cri_start_requested", container: ID, reply: () => {} }, 1000);
    assert.equal(t.state.containers.get(ID)?.process?.phase, "starting");
    assert.ok(t.steps.some((s) => s.type === "start_container"));
    for (const type of ["start", "prepare", "checkpoint", "restore"] as const) {
      const request =
        type === "start"
          ? { type, container: ID, init: null, arguments: [], environment: {} }
          : { type, container: ID };
      const r = handleRequest(state, host, request, () => {}, 0);
      assert.equal(r.state, state, type);
      const [response] = answers(r.steps);
      assert.match(JSON.stringify(response), /"type":"error".*"unsupported"/, type);
    }
  });

  void it("refuses uninstall, mount and umount from the console", () => {
    const state = added();
    const uninstall = handleRequest(
      state,
      host,
      { type: "uninstall", container: ID, wipe: false },
      () => {},
      0,
    );
    assert.equal(uninstall.state, state);
    assert.match(JSON.stringify(answers(uninstall.steps)), /unsupported/);
    const mount = handleRequest(state, host, { type: "mount", containers: [ID] }, () => {}, 0);
    assert.match(JSON.stringify(answers(mount.steps)), /unsupported/);
  });

  void it("removes a record that does not run, and refuses one that does", () => {
    const state = added();
    const running = criStartRequested(
      state,
      { type: "cri_start_requested", container: ID, reply: () => {} },
      1000,
    ).state;
    const busy = criContainerRemoved(running, {
      type: "cri_container_removed",
      container: ID,
      reply: () => {},
    });
    assert.equal(busy.state, running);
    assert.match(JSON.stringify(answers(busy.steps)), /umount_busy/);
    const removed = criContainerRemoved(state, {
      type: "cri_container_removed",
      container: ID,
      reply: () => {},
    });
    assert.equal(removed.state.containers.has(ID), false);
    assert.deepEqual(answers(removed.steps), [{ type: "uninstall", result: { type: "ok", container: ID } }]);
  });
});
