// The pure parts of runtime handlers and the image policy: spreading pods across the live
// handlers, the registry rule, and their `[cri]` configuration.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { spread } from "../../../src/cri/handlers.js";
import { ImagePolicy, ImagePolicyError } from "../../../src/cri/policy.js";
import { parsePullReference } from "../../../src/cri/image-names.js";
import { parseConfig } from "../../../src/daemon/config/load.js";

const HEX = "b".repeat(64);

void describe("spreading pods across runtime handlers", () => {
  void it("takes turns when the loads are equal (round robin in configuration order)", () => {
    const live = ["runc", "crun", "kata"];
    let previous: string | undefined;
    const picks: string[] = [];
    for (let i = 0; i < 7; i++) {
      previous = spread(live, () => 0, previous);
      picks.push(previous);
    }
    assert.deepEqual(picks, ["runc", "crun", "kata", "runc", "crun", "kata", "runc"]);
  });

  void it("picks the least-loaded handler, ties to the first after the previous pick", () => {
    const load = new Map([
      ["runc", 3],
      ["crun", 1],
      ["kata", 1],
    ]);
    const count = (h: string) => load.get(h) ?? 0;
    assert.equal(spread(["runc", "crun", "kata"], count, undefined), "crun");
    assert.equal(spread(["runc", "crun", "kata"], count, "crun"), "kata");
    assert.equal(spread(["runc", "crun", "kata"], count, "kata"), "crun");
    load.set("runc", 0);
    assert.equal(spread(["runc", "crun", "kata"], count, "runc"), "runc");
  });

  void it("fills the handlers evenly when each pick adds a pod", () => {
    const load = new Map<string, number>();
    let previous: string | undefined;
    for (let i = 0; i < 10; i++) {
      previous = spread(["runc", "crun"], (h) => load.get(h) ?? 0, previous);
      load.set(previous, (load.get(previous) ?? 0) + 1);
    }
    assert.deepEqual(Object.fromEntries(load), { runc: 5, crun: 5 });
  });

  void it("starts from the first handler when the previous pick is no longer live", () => {
    assert.equal(
      spread(["runc", "crun"], () => 0, "kata"),
      "runc",
    );
    assert.throws(() => spread([], () => 0, undefined), /no live handler/);
  });
});

void describe("the image policy", () => {
  const ref = (text: string) => parsePullReference(text);

  void it("allows any registry when none is configured", () => {
    const policy = new ImagePolicy(undefined);
    policy.checkPull(ref("busybox"));
    policy.checkStored({ id: `sha256:${HEX}`, repoTags: [], repoDigests: [] });
    assert.equal(policy.registries, undefined);
  });

  void it("allows only the configured registries, host case-insensitive, port exact", () => {
    const policy = new ImagePolicy(["127.0.0.1:5000", "Registry.Example.com"]);
    policy.checkPull(ref("127.0.0.1:5000/team/app:1.2"));
    policy.checkPull(ref("registry.example.com/app@sha256:" + HEX));
    assert.throws(
      () => policy.checkPull(ref("127.0.0.1:5001/team/app:1.2")),
      (e: unknown) =>
        e instanceof ImagePolicyError &&
        /127\.0\.0\.1:5001\/team\/app is from registry 127\.0\.0\.1:5001/.test(e.message) &&
        /allowed: 127\.0\.0\.1:5000, registry\.example\.com/.test(e.message),
    );
    assert.throws(() => policy.checkPull(ref("busybox")), /registry docker\.io/);
  });

  void it("treats Docker Hub's names as one registry", () => {
    const policy = new ImagePolicy(["index.docker.io"]);
    policy.checkPull(ref("busybox"));
    policy.checkPull(ref("docker.io/library/alpine:3"));
    policy.checkStored({
      id: `sha256:${HEX}` as const,
      repoTags: ["docker.io/library/busybox:latest"],
      repoDigests: [],
    });
  });

  void it("allows a stored image when one of its names is from an allowed registry", () => {
    const policy = new ImagePolicy(["127.0.0.1:5000"]);
    const image = {
      id: `sha256:${HEX}` as const,
      repoTags: ["other.example:443/app:1"],
      repoDigests: [`127.0.0.1:5000/app@sha256:${HEX}`],
    };
    policy.checkStored(image);
    assert.throws(
      () => policy.checkStored({ ...image, repoDigests: [] }),
      /is from other\.example:443, which \[cri\] allowed_registries does not allow/,
    );
    assert.throws(
      () => policy.checkStored({ ...image, repoTags: [], repoDigests: [] }),
      /is from no registry/,
    );
    // An empty list allows nothing.
    assert.throws(() => new ImagePolicy([]).checkStored(image), /allowed: none/);
  });
});

void describe("[cri] runtime handlers and allowed registries in the configuration", () => {
  void it("defaults to no list (runc and crun where found) and any registry", () => {
    const c = parseConfig("");
    assert.deepEqual(c.cri.runtimeHandlers, []);
    assert.equal(c.cri.allowedRegistries, undefined);
  });

  void it("reads named handlers, their kind defaulting to their name", () => {
    const c = parseConfig(`
[cri]
allowed_registries = ["127.0.0.1:5000"]
[cri.runtime_handlers.runc]
[cri.runtime_handlers.fast]
kind = "crun"
path = "/opt/crun"
`);
    assert.deepEqual(c.cri.allowedRegistries, ["127.0.0.1:5000"]);
    assert.deepEqual(c.cri.runtimeHandlers, [
      { name: "runc", kind: "runc" },
      { name: "fast", kind: "crun", path: "/opt/crun" },
    ]);
  });

  void it("refuses bad names, a missing kind and bad registries, naming the key", () => {
    assert.throws(
      () => parseConfig(`[cri.runtime_handlers.Fast]\nkind = "crun"\n`),
      /cri\.runtime_handlers\.Fast: a handler name is a DNS label/,
    );
    assert.throws(
      () => parseConfig(`[cri.runtime_handlers.fast]\n`),
      /cri\.runtime_handlers\.fast\.kind: required unless/,
    );
    assert.throws(
      () => parseConfig(`[cri.runtime_handlers.runc]\npath = "runc"\n`),
      /path: must be an absolute path/,
    );
    const registries = (list: string) =>
      parseConfig(`[cri]\nallowed_registries = ${list}\n`).cri.allowedRegistries;
    assert.deepEqual(registries(`["127.0.0.1:5000", "registry.example.com", "[::1]:5000", "localhost"]`), [
      "127.0.0.1:5000",
      "registry.example.com",
      "[::1]:5000",
      "localhost",
    ]);
    assert.throws(
      () => registries(`["r.example/team"]`),
      /allowed_registries\[0\]: expected host\[:port\], without a path/,
    );
    assert.throws(() => registries(`["r.example:0"]`), /port must be 1\.\.65535/);
    assert.throws(() => registries(`["-bad"]`), /expected host\[:port\] such as/);
    assert.throws(
      () => parseConfig(`[cri]\nallowed_registries = ["https://x"]\n`),
      /allowed_registries\[0\]: expected host\[:port\], without a scheme/,
    );
  });
});
