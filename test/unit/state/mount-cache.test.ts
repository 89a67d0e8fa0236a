import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  initialPower,
  initialState,
  withContainer,
  type ContainerRecord,
  type ProcessRecord,
  type RuntimeState,
} from "../../../src/daemon/state/model.js";
import { imagesReleased, trimMountCache } from "../../../src/daemon/state/mount-cache.js";
import { mountRequest, mountsDone } from "../../../src/daemon/state/packages.js";
import { imagesMounted, startContainer } from "../../../src/daemon/state/containers.js";
import { adopted } from "../../../src/daemon/state/prepare.js";
import type { InstalledPackage } from "../../../src/daemon/repository/repository.js";
import type { MountHandle } from "../../../src/daemon/mount/index.js";
import type { Step, Transition } from "../../../src/daemon/events/steps.js";
import { NO_OVERRIDES } from "../../../src/daemon/events/data.js";
import type { Npk } from "../../../src/npk/npk.js";

const reply = (): void => undefined;
const id = (name: string): `${string}:${string}` => `${name}:1.0.0`;
const handle = (name: string): MountHandle => ({
  target: `/run/images/${name}`,
  fsType: "squashfs",
  method: "loop",
});

function pkg(name: string): InstalledPackage {
  const manifest = { name, version: "1.0.0", init: "/bin/true" };
  return { repository: "r", npk: { path: `/r/${name}.npk`, manifest } as unknown as Npk, size: 1 };
}
function running(resources: string[] = []): ProcessRecord {
  return {
    phase: "running",
    startedBy: "request",
    overrides: NO_OVERRIDES,
    resources: resources.map(id),
    stopReplies: [],
    stopRequested: false,
    power: initialPower(0),
  };
}
const record = (name: string, extra: Partial<ContainerRecord> = {}): ContainerRecord => ({
  id: id(name),
  pkg: pkg(name),
  ...extra,
});
/** Mounted by a start. */
const cached = (name: string, extra: Partial<ContainerRecord> = {}): ContainerRecord =>
  record(name, { mount: handle(name), mountedBy: "start", ...extra });

function state(records: ContainerRecord[], cacheSize: number): RuntimeState {
  return initialState([{ id: "r", keyed: false }], records, undefined, cacheSize);
}
/** The transition of the exits of `names`: their processes gone, each cleaned up. */
function exits(before: RuntimeState, ...names: string[]): Transition<RuntimeState> {
  let next = before;
  const steps: Step[] = [];
  for (const name of names) {
    next = withContainer(next, { ...next.containers.get(id(name))!, process: undefined });
    steps.push({ type: "cleanup_container", container: id(name) });
  }
  return { state: next, steps };
}
function released(t: Transition<RuntimeState>): string[] {
  const step = t.steps.find((s) => s.type === "release_images");
  return step?.type === "release_images" ? step.images.map((i) => i.container) : [];
}

describe("mount cache", () => {
  it("keeps up to the bound of unused start-mounted images, releasing the least recently used", () => {
    const before = state(
      [
        cached("old", { idleSince: 10 }),
        cached("older", { idleSince: 5 }),
        cached("a", { process: running() }),
      ],
      2,
    );
    const t = trimMountCache(before, exits(before, "a"), 100);
    assert.deepEqual(released(t), [id("older")]);
    const a = t.state.containers.get(id("a"))!;
    assert.equal(a.idleSince, 100);
    assert.ok(a.mount);
    const older = t.state.containers.get(id("older"))!;
    assert.equal(older.mount, undefined, "a handle being released is forgotten at once");
    assert.deepEqual(older.releasing, handle("older"));
  });

  it("bound 0 releases an instance's image and its resources as soon as it ends", () => {
    const before = state([cached("app", { process: running(["res"]) }), cached("res")], 0);
    const t = trimMountCache(before, exits(before, "app"), 1);
    assert.deepEqual(released(t).sort(), [id("app"), id("res")]);
  });

  it("keeps images in use (own image or resource, any phase) and those a mount request made", () => {
    const before = state(
      [
        cached("app", { process: running(["res"]) }),
        cached("other", { process: { ...running(["res"]), phase: "prepared" } }),
        cached("res"),
        record("asked", { mount: handle("asked"), mountedBy: "request", idleSince: 0 }),
        record("boot", { mount: handle("boot") }),
        cached("busy", { busy: "umount" }),
      ],
      0,
    );
    const t = trimMountCache(before, exits(before, "app"), 1);
    assert.deepEqual(released(t), [id("app")]);
  });

  it("does nothing for a transition that ends no instance", () => {
    const before = state([cached("x"), cached("y")], 0);
    const t = { state: before, steps: [] };
    assert.equal(trimMountCache(before, t, 1), t);
  });

  it("an image never stamped idle goes first", () => {
    const before = state(
      [cached("stamped", { idleSince: 1 }), cached("never"), cached("a", { process: running() })],
      1,
    );
    const t = trimMountCache(before, exits(before, "a"), 100);
    assert.deepEqual(released(t), [id("never"), id("stamped")]);
  });

  it("a start of an image being released is not refused: it mounts again (INVARIANTS)", () => {
    const before = state([cached("a", { process: running() })], 0);
    const t = trimMountCache(before, exits(before, "a"), 1);
    assert.deepEqual(released(t), [id("a")]);
    const start = startContainer(t.state, id("a"), { overrides: NO_OVERRIDES, startedBy: "request", now: 2 });
    const step = start.steps.find((s) => s.type === "start_container");
    assert.ok(step?.type === "start_container", JSON.stringify(start.steps));
    assert.equal(step.mount, undefined, "the start mounts the image again");
    // The remount lands, then the old release reports: the new mount is kept.
    const remounted = imagesMounted(start.state, [{ container: id("a"), handle: handle("a2") }]).state;
    const releaseStep = t.steps.find((s) => s.type === "release_images");
    assert.ok(releaseStep?.type === "release_images");
    const done = imagesReleased(remounted, {
      type: "images_released",
      results: [{ container: id("a"), handle: releaseStep.images[0]!.handle }],
    });
    const a = done.state.containers.get(id("a"))!;
    assert.deepEqual(a.mount, handle("a2"));
    assert.equal(a.releasing, undefined);
  });

  it("a failed release gives the handle back to the cache", () => {
    const before = state([cached("a", { process: running() })], 0);
    const t = trimMountCache(before, exits(before, "a"), 1);
    const releasing = t.state.containers.get(id("a"))!.releasing!;
    const done = imagesReleased(t.state, {
      type: "images_released",
      results: [{ container: id("a"), handle: releasing, error: "EBUSY" }],
    });
    assert.deepEqual(done.state.containers.get(id("a"))!.mount, releasing);
    assert.equal(done.state.containers.get(id("a"))!.mountedBy, "start");
    assert.equal(done.steps[0]?.type, "log");
  });

  it("an explicit mount of a start-mounted image keeps it; a mount request's image is kept", () => {
    const s = state([cached("a"), record("b")], 0);
    const t = mountRequest(s, "mount", [id("a"), id("b")], reply);
    assert.equal(t.state.containers.get(id("a"))!.mountedBy, "request");
    const step = t.steps[0];
    assert.ok(step?.type === "mount_images");
    const done = mountsDone(t.state, {
      type: "mounted",
      kind: "mount",
      results: [{ container: id("b"), handle: handle("b") }],
      immediate: step.immediate,
      reply,
    });
    assert.equal(done.state.containers.get(id("b"))!.mountedBy, "request");
  });

  it("re-adoption: the images of adopted instances join the cache, other mounts a previous daemon left stay", () => {
    const left = (name: string): ContainerRecord => record(name, { mount: handle(name) });
    const s = state([left("app"), left("res"), left("other")], 0);
    const t = adopted(s, [
      {
        container: id("app"),
        pid: 42,
        cgroupPath: "/sys/fs/cgroup/x",
        startedAt: 0,
        startedBy: "request",
        overrides: NO_OVERRIDES,
        resources: [id("res")],
      },
    ]);
    assert.equal(t.state.containers.get(id("app"))!.mountedBy, "start");
    assert.equal(t.state.containers.get(id("res"))!.mountedBy, "start");
    assert.equal(t.state.containers.get(id("other"))!.mountedBy, undefined);
    const ended = trimMountCache(t.state, exits(t.state, "app"), 5);
    assert.deepEqual(released(ended).sort(), [id("app"), id("res")]);
  });
});
