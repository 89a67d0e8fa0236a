/**
 * state/persistent-map.ts against a native Map (same answers, same insertion order, old versions
 * unchanged), and the instance counts of state/model.ts against a recount over `containers` after
 * every change. Pure: no kernel, no clock.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { PersistentMap } from "../../../src/daemon/state/persistent-map.js";
import {
  initialPower,
  initialState,
  withContainer,
  withoutContainer,
  type ContainerLimits,
  type ContainerRecord,
  type RuntimeState,
} from "../../../src/daemon/state/model.js";
import type { InstalledPackage } from "../../../src/daemon/repository/repository.js";
import type { Npk } from "../../../src/npk/npk.js";
import type { GroupConfig } from "../../../src/daemon/config/schema.js";

/** A deterministic generator (xorshift32): the same sequence on every run. */
function random(seed: number): (below: number) => number {
  let x = seed;
  return (below) => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % below;
  };
}

describe("PersistentMap", () => {
  it("answers as a native Map through 5000 random sets and deletes, in insertion order", () => {
    const next = random(7);
    let map = PersistentMap.empty<string, number>();
    const native = new Map<string, number>();
    for (let i = 0; i < 5000; i++) {
      const key = `c-${next(1500)}:1.0.0`;
      if (next(3) === 0) {
        map = map.delete(key);
        native.delete(key);
      } else {
        map = map.set(key, i);
        native.set(key, i);
      }
      assert.equal(map.size, native.size);
      assert.equal(map.get(key), native.get(key));
      assert.equal(map.has(key), native.has(key));
      if (i % 500 === 0) assert.deepEqual([...map], [...native]);
    }
    assert.deepEqual([...map.entries()], [...native.entries()]);
    assert.deepEqual([...map.keys()], [...native.keys()]);
    assert.deepEqual([...map.values()], [...native.values()]);
    const seen: [string, number][] = [];
    map.forEach((v, k) => seen.push([k, v]));
    assert.deepEqual(seen, [...native]);
  });

  it("leaves earlier versions as they were", () => {
    const a = PersistentMap.from<string, number>([
      ["x", 1],
      ["y", 2],
    ]);
    const b = a.set("x", 10).set("z", 3);
    const c = b.delete("y");
    assert.deepEqual(
      [...a],
      [
        ["x", 1],
        ["y", 2],
      ],
    );
    assert.deepEqual(
      [...b],
      [
        ["x", 10],
        ["y", 2],
        ["z", 3],
      ],
    );
    assert.deepEqual(
      [...c],
      [
        ["x", 10],
        ["z", 3],
      ],
    );
    assert.equal(c.delete("absent"), c);
  });

  it("a key set again keeps its place; deleted and set again, it goes last", () => {
    const m = PersistentMap.from<string, number>([
      ["a", 1],
      ["b", 2],
      ["c", 3],
    ]);
    assert.deepEqual([...m.set("a", 9).keys()], ["a", "b", "c"]);
    assert.deepEqual([...m.delete("a").set("a", 9).keys()], ["b", "c", "a"]);
  });
});

describe("instance counts (state/model.ts)", () => {
  const groups = [{ name: "g" }, { name: "h" }] as GroupConfig[];
  const limits: ContainerLimits = { maxContainers: 100, groups };

  function record(
    name: string,
    version: string,
    group: string | undefined,
    running: boolean,
  ): ContainerRecord {
    const manifest = { name, version, init: "/bin/sh", ...(group ? { group } : {}) };
    const pkg = { repository: "r", npk: { path: "/x.npk", manifest } as unknown as Npk, size: 1 };
    return {
      id: `${name}:${version}`,
      pkg: pkg as InstalledPackage,
      ...(running
        ? {
            process: {
              phase: "running",
              startedBy: "request",
              overrides: { init: null, arguments: [], environment: {} },
              resources: [],
              stopReplies: [],
              stopRequested: false,
              power: initialPower(0),
            },
          }
        : {}),
    };
  }

  function recounted(state: RuntimeState) {
    let total = 0;
    const byName = new Map<string, number>();
    const byGroup = new Map<string, number>();
    for (const c of state.containers.values()) {
      if (!c.process) continue;
      total++;
      const m = c.pkg.npk.manifest;
      byName.set(m.name, (byName.get(m.name) ?? 0) + 1);
      if (m.group !== undefined && groups.some((g) => g.name === m.group))
        byGroup.set(m.group, (byGroup.get(m.group) ?? 0) + 1);
    }
    return { total, byName, byGroup };
  }

  it("equal a recount after every change, an unknown group counted daemon-wide only", () => {
    const next = random(11);
    const names = ["a", "b", "c", "d"];
    const groupNames = [undefined, "g", "h", "unknown"];
    let state = initialState([], [record("a", "1.0.0", "g", true)], limits);
    for (let i = 0; i < 3000; i++) {
      const name = names[next(names.length)]!;
      const version = `1.0.${next(3)}`;
      if (next(4) === 0) state = withoutContainer(state, `${name}:${version}`);
      else state = withContainer(state, record(name, version, groupNames[next(4)], next(2) === 0));
      const want = recounted(state);
      assert.equal(state.instances.total, want.total);
      assert.deepEqual(new Map(state.instances.byName), want.byName);
      assert.deepEqual(new Map(state.instances.byGroup), want.byGroup);
    }
  });
});
