import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { OciImageError } from "../../../src/oci-image/errors.js";
import { isLoopbackHost, parseImageSource, parseRegistryRef } from "../../../src/oci-image/reference.js";

const HEX = "a".repeat(64);

void describe("parseImageSource", () => {
  void it("reads every transport, with and without a tag", () => {
    assert.deepEqual(parseImageSource("oci:/img/layout:v1"), {
      kind: "oci-layout",
      dir: "/img/layout",
      tag: "v1",
    });
    assert.deepEqual(parseImageSource("oci:/img/layout"), { kind: "oci-layout", dir: "/img/layout" });
    assert.deepEqual(parseImageSource("/img/layout"), { kind: "oci-layout", dir: "/img/layout" });
    assert.deepEqual(parseImageSource("./rel"), { kind: "oci-layout", dir: "./rel" });
    assert.deepEqual(parseImageSource("oci-archive:a.tar:latest"), {
      kind: "oci-archive",
      file: "a.tar",
      tag: "latest",
    });
    assert.deepEqual(parseImageSource("docker-archive:/x/d.tar"), {
      kind: "docker-archive",
      file: "/x/d.tar",
    });
    assert.deepEqual(parseImageSource("docker://127.0.0.1:5000/a/b:1.0"), {
      kind: "registry",
      ref: { host: "127.0.0.1:5000", repository: "a/b", tag: "1.0" },
    });
  });

  void it("keeps a colon followed by a path in the path", () => {
    assert.deepEqual(parseImageSource("oci:./a:b/c"), { kind: "oci-layout", dir: "./a:b/c" });
  });

  void it("refuses unknown transports, empty paths and NUL", () => {
    for (const bad of ["http://x/y", "oci:", "oci-archive:", "a\0b"]) {
      assert.throws(
        () => parseImageSource(bad),
        (e: unknown) => e instanceof OciImageError && e.kind === "usage",
        bad,
      );
    }
  });
});

void describe("parseRegistryRef", () => {
  void it("defaults to Docker Hub, library/ and latest as docker does", () => {
    assert.deepEqual(parseRegistryRef("busybox"), {
      host: "registry-1.docker.io",
      repository: "library/busybox",
      tag: "latest",
    });
    assert.deepEqual(parseRegistryRef("docker.io/user/app:2"), {
      host: "registry-1.docker.io",
      repository: "user/app",
      tag: "2",
    });
    assert.deepEqual(parseRegistryRef("localhost/app"), {
      host: "localhost",
      repository: "app",
      tag: "latest",
    });
  });

  void it("takes a digest instead of or with a tag", () => {
    assert.deepEqual(parseRegistryRef(`r.example:443/a/b@sha256:${HEX}`), {
      host: "r.example:443",
      repository: "a/b",
      digest: `sha256:${HEX}`,
    });
    assert.deepEqual(parseRegistryRef(`r.example/a:t@sha256:${HEX}`), {
      host: "r.example",
      repository: "a",
      tag: "t",
      digest: `sha256:${HEX}`,
    });
  });

  void it("refuses bad repository names, tags and digests", () => {
    for (const bad of [
      "r.example/UPPER",
      "r.example/a:bad/tag",
      "r.example/a:-x",
      "r.example/a@sha256:abc",
      "r.example/a@md5:" + HEX,
      "r.example/a//b",
      "r.example/a..b",
    ]) {
      assert.throws(() => parseRegistryRef(bad), OciImageError, bad);
    }
  });
});

void describe("isLoopbackHost", () => {
  void it("allows plain HTTP only to loopback", () => {
    for (const host of ["127.0.0.1:5000", "127.1.2.3", "localhost:80", "[::1]:5000"])
      assert.ok(isLoopbackHost(host), host);
    for (const host of ["10.0.0.1:5000", "registry.example", "localhost.example", "[::2]:5000"])
      assert.ok(!isLoopbackHost(host), host);
  });
});
