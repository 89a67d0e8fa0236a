import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { describe, it } from "node:test";
import { DigestVerifier, readVerified, sha256Digest } from "../../../src/oci-image/digest.js";
import {
  layerCompression,
  parseImageConfig,
  parseManifestDocument,
} from "../../../src/oci-image/documents.js";
import { OciImageError } from "../../../src/oci-image/errors.js";

const D = `sha256:${"b".repeat(64)}` as const;
const json = (v: unknown) => Buffer.from(JSON.stringify(v));

void describe("image documents", () => {
  void it("parses an OCI manifest and a Docker manifest list", () => {
    const manifest = parseManifestDocument(
      json({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: D, size: 10 },
        layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: D, size: 20 }],
        annotations: { a: "b" },
      }),
      "t",
    );
    assert.equal(manifest.kind, "manifest");
    assert.deepEqual(manifest.kind === "manifest" ? manifest.layers[0]?.size : undefined, 20);
    const list = parseManifestDocument(
      json({
        schemaVersion: 2,
        manifests: [
          {
            mediaType: "application/vnd.docker.distribution.manifest.v2+json",
            digest: D,
            size: 1,
            platform: { os: "linux", architecture: "amd64" },
          },
        ],
      }),
      "t",
      "application/vnd.docker.distribution.manifest.list.v2+json; charset=utf-8",
    );
    assert.equal(list.kind, "index");
  });

  void it("refuses schema 1, bad digests, negative sizes and non-JSON", () => {
    const bad = [
      json({ schemaVersion: 1, name: "x" }),
      json({ schemaVersion: 2, layers: [], config: { mediaType: "x", digest: "sha256:zz", size: 1 } }),
      json({ schemaVersion: 2, layers: [], config: { mediaType: "x", digest: D, size: -1 } }),
      json({
        schemaVersion: 2,
        layers: [],
        config: { mediaType: "x", digest: `sha512:${"a".repeat(128)}`, size: 1 },
      }),
      Buffer.from("{not json"),
      json([1, 2]),
    ];
    for (const b of bad)
      assert.throws(() => parseManifestDocument(b, "t"), OciImageError, b.toString().slice(0, 40));
    assert.throws(() => parseManifestDocument(Buffer.alloc(5 * 1024 * 1024, 32), "t"), /more than/);
  });

  void it("knows the layer media types", () => {
    assert.equal(layerCompression("application/vnd.docker.image.rootfs.diff.tar.gzip", "t"), "gzip");
    assert.equal(layerCompression("application/vnd.oci.image.layer.v1.tar", "t"), "none");
    assert.equal(layerCompression("application/vnd.oci.image.layer.v1.tar+zstd", "t"), "zstd");
    assert.throws(
      () => layerCompression("application/vnd.cncf.helm.chart.content.v1.tar+gzip", "t"),
      /unsupported layer media type/,
    );
  });

  void it("parses the config fields Skiff maps and checks the rest", () => {
    const config = parseImageConfig(
      json({
        architecture: "amd64",
        os: "linux",
        config: {
          Entrypoint: ["/a"],
          Cmd: null,
          Env: ["A=1"],
          User: "1:2",
          Volumes: { "/v": {} },
          Labels: { l: "x" },
        },
        rootfs: { type: "layers", diff_ids: [D] },
      }),
      "t",
    );
    assert.deepEqual(config.config, {
      Entrypoint: ["/a"],
      Env: ["A=1"],
      User: "1:2",
      Volumes: ["/v"],
      Labels: { l: "x" },
    });
    assert.deepEqual(config.diffIds, [D]);
    assert.throws(
      () => parseImageConfig(json({ architecture: "amd64", os: "linux", rootfs: { type: "layers" } }), "t"),
      /rootfs/,
    );
    assert.throws(
      () =>
        parseImageConfig(
          json({
            architecture: "amd64",
            os: "linux",
            config: { Cmd: "sh" },
            rootfs: { type: "layers", diff_ids: [] },
          }),
          "t",
        ),
      /Cmd must be a list of strings/,
    );
  });
});

void describe("DigestVerifier", () => {
  const data = Buffer.from("some blob content");

  void it("passes content whose digest and size match", async () => {
    assert.deepEqual(
      await readVerified(Readable.from([data]), {
        what: "b",
        digest: sha256Digest(data),
        size: data.length,
        maxBytes: 100,
      }),
      data,
    );
  });

  void it("refuses a digest mismatch, a short blob and a long blob", async () => {
    await assert.rejects(
      readVerified(Readable.from([data]), { what: "b", digest: D, size: data.length, maxBytes: 100 }),
      /digest mismatch/,
    );
    await assert.rejects(
      readVerified(Readable.from([data]), {
        what: "b",
        digest: sha256Digest(data),
        size: data.length + 1,
        maxBytes: 100,
      }),
      /but its descriptor declares/,
    );
    await assert.rejects(
      readVerified(Readable.from([data]), { what: "b", digest: sha256Digest(data), size: 3, maxBytes: 100 }),
      /longer than its declared size/,
    );
    await assert.rejects(
      readVerified(Readable.from([data]), { what: "b", maxBytes: 4 }),
      /more than 4 bytes/,
    );
  });

  void it("fails on the chunk that crosses the limit, before passing it on", async () => {
    const verifier = new DigestVerifier({ what: "b", maxBytes: 5 });
    const passed: Buffer[] = [];
    verifier.on("data", (c: Buffer) => passed.push(c));
    const failed = new Promise((resolve) => verifier.on("error", resolve));
    verifier.write(Buffer.from("1234"));
    verifier.write(Buffer.from("5678"));
    assert.match(String(await failed), /more than 5 bytes/);
    assert.deepEqual(Buffer.concat(passed).toString(), "1234");
  });
});
