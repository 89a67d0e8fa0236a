import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { initialState, withContainer, type ContainerRecord } from "../../../src/daemon/state/model.js";
import {
  mountRequest,
  mountsDone,
  uninstallRequest,
  uploadReceived,
} from "../../../src/daemon/state/packages.js";
import type { InstalledPackage } from "../../../src/daemon/repository/repository.js";
import type { Npk } from "../../../src/npk/npk.js";

const reply = (): void => undefined;

function pkg(name: string, repository = "r", size = 100): InstalledPackage {
  const npk = { path: `/r/${name}.npk`, manifest: { name, version: "1.0.0" } } as unknown as Npk;
  return { repository, npk, size };
}
const record = (name: string, extra: Partial<ContainerRecord> = {}): ContainerRecord => ({
  id: `${name}:1.0.0`,
  pkg: pkg(name),
  ...extra,
});

describe("package transitions", () => {
  const base = initialState([{ id: "r", keyed: false, capacityNum: 2, capacitySize: 250 }], [record("a")]);

  it("reserves an upload's id and commits it", () => {
    const t = uploadReceived(base, pkg("b"), "/tmp/u", reply);
    assert.equal(t.state.containers.get("b:1.0.0")?.busy, "install");
    assert.equal(t.steps[0]!.type, "commit_install");
  });

  it("refuses duplicates, then full repositories, and discards the upload", () => {
    const dup = uploadReceived(base, pkg("a"), "/tmp/u", reply);
    assert.deepEqual(dup.steps[0], { type: "discard_upload", tempPath: "/tmp/u" });
    assert.match(JSON.stringify(dup.steps[1]), /install_duplicate/);
    const bySize = uploadReceived(base, pkg("b", "r", 200), "/tmp/u", reply);
    assert.match(JSON.stringify(bySize.steps[1]), /exceed its capacity of 250/);
    const full = withContainer(base, record("b"));
    assert.match(JSON.stringify(uploadReceived(full, pkg("c"), "/tmp/u", reply).steps[1]), /holds 2 of 2/);
    assert.match(
      JSON.stringify(uploadReceived(base, pkg("c", "x"), "/tmp/u", reply).steps[1]),
      /invalid_repository/,
    );
  });

  it("mount keeps request order, answers known states at once, and marks jobs busy", () => {
    const state = withContainer(
      base,
      record("m", { mount: { target: "/t", fsType: "squashfs", method: "loop" } }),
    );
    const t = mountRequest(state, "mount", ["x:1.0.0", "a:1.0.0", "m:1.0.0"], reply);
    const step = t.steps[0] as Extract<(typeof t.steps)[number], { type: "mount_images" }>;
    assert.equal(step.type, "mount_images");
    assert.deepEqual(
      step.jobs.map((j) => j.container),
      ["a:1.0.0"],
    );
    assert.equal(t.state.containers.get("a:1.0.0")?.busy, "mount");
    const handle = { target: "/a", fsType: "squashfs" as const, method: "loop" as const };
    const done = mountsDone(t.state, {
      type: "mounted",
      kind: "mount",
      results: [{ container: "a:1.0.0", handle }],
      immediate: step.immediate,
      reply,
    });
    assert.deepEqual(done.state.containers.get("a:1.0.0")?.mount, handle);
    assert.equal(done.state.containers.get("a:1.0.0")?.busy, undefined);
    const response = (done.steps[0] as { response: unknown }).response;
    assert.deepEqual(response, {
      type: "mount",
      results: [
        { type: "error", container: "x:1.0.0", error: { type: "invalid_container", container: "x:1.0.0" } },
        { type: "ok", container: "a:1.0.0" },
        { type: "ok", container: "m:1.0.0" },
      ],
    });
  });

  it("a busy container refuses a second operation at once", () => {
    const busy = withContainer(base, record("a", { busy: "mount" }));
    const t = mountRequest(busy, "umount", ["a:1.0.0"], reply);
    assert.match(JSON.stringify(t.steps[0]), /umount_busy/);
    const u = uninstallRequest(busy, { type: "uninstall", container: "a:1.0.0", wipe: false }, reply);
    assert.match(JSON.stringify(u.steps[0]), /umount_busy/);
  });
});
