// How CRI requests name images (pure): references in canonical form, IDs, and the refusals.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  ImageNameError,
  MAX_IMAGE_NAME_LENGTH,
  namesOf,
  parseImageLookup,
  parsePullReference,
} from "../../../src/cri/image-names.js";

const HEX = "a".repeat(64);

void describe("CRI image names", () => {
  void it("reads references as docker does and writes them canonically", () => {
    assert.deepEqual(parseImageLookup("busybox"), {
      kind: "tag",
      name: "docker.io/library/busybox:latest",
      ref: { host: "registry-1.docker.io", repository: "library/busybox", tag: "latest" },
    });
    const lookup = parseImageLookup("docker.io/library/busybox:1.36");
    assert.equal(lookup.kind === "tag" && lookup.name, "docker.io/library/busybox:1.36");
    const local = parseImageLookup("127.0.0.1:5000/team/app:1.2");
    assert.equal(local.kind === "tag" && local.name, "127.0.0.1:5000/team/app:1.2");
  });

  void it("tells IDs (with or without sha256:) from references by digest", () => {
    assert.deepEqual(parseImageLookup(`sha256:${HEX}`), { kind: "id", id: `sha256:${HEX}` });
    assert.deepEqual(parseImageLookup(HEX), { kind: "id", id: `sha256:${HEX}` });
    const byDigest = parseImageLookup(`127.0.0.1:5000/app@sha256:${HEX}`);
    assert.equal(byDigest.kind, "digest");
    assert.equal(byDigest.kind === "digest" && byDigest.name, `127.0.0.1:5000/app@sha256:${HEX}`);
  });

  void it("names a pulled image by its tag and its repository digest", () => {
    const ref = parsePullReference("127.0.0.1:5000/app:1.2");
    assert.deepEqual(namesOf(ref, `sha256:${HEX}`), {
      tag: "127.0.0.1:5000/app:1.2",
      digest: `127.0.0.1:5000/app@sha256:${HEX}`,
    });
    assert.deepEqual(namesOf(parsePullReference(`app@sha256:${HEX}`), undefined), {
      digest: `docker.io/library/app@sha256:${HEX}`,
    });
  });

  void it("refuses empty, over-long, scheme-prefixed and malformed names before using them", () => {
    assert.throws(() => parseImageLookup(""), ImageNameError);
    assert.throws(() => parseImageLookup("a".repeat(MAX_IMAGE_NAME_LENGTH + 1)), ImageNameError);
    assert.throws(() => parsePullReference("docker://busybox"), /has no scheme/);
    assert.throws(() => parsePullReference("Upper/Case"), ImageNameError);
    assert.throws(() => parsePullReference("app:bad!tag"), ImageNameError);
    assert.throws(() => parsePullReference("../../etc:1"), ImageNameError);
  });
});
