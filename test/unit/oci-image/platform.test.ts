import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Descriptor } from "../../../src/oci-image/documents.js";
import {
  checkConfigPlatform,
  parsePlatform,
  platformMatches,
  selectPlatformManifest,
} from "../../../src/oci-image/platform.js";

function desc(n: number, platform?: Descriptor["platform"]): Descriptor {
  return {
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    digest: `sha256:${String(n).repeat(64).slice(0, 64)}`,
    size: 1,
    annotations: {},
    ...(platform === undefined ? {} : { platform }),
  };
}

const AMD64 = { os: "linux", architecture: "amd64" };
const ARM64 = { os: "linux", architecture: "arm64" };

void describe("platforms", () => {
  void it("parses OS/ARCH[/VARIANT]", () => {
    assert.deepEqual(parsePlatform("linux/arm/v7"), { os: "linux", architecture: "arm", variant: "v7" });
    assert.throws(() => parsePlatform("arm64"), /OS\/ARCH/);
  });

  void it("matches variants only when the target names one", () => {
    assert.ok(platformMatches({ ...ARM64, variant: "v8" }, ARM64));
    assert.ok(
      platformMatches(
        { os: "linux", architecture: "arm", variant: "v7" },
        { os: "linux", architecture: "arm", variant: "v7" },
      ),
    );
    assert.ok(
      !platformMatches(
        { os: "linux", architecture: "arm", variant: "v6" },
        { os: "linux", architecture: "arm", variant: "v7" },
      ),
    );
    assert.ok(!platformMatches(ARM64, AMD64));
    assert.ok(!platformMatches({ os: "windows", architecture: "amd64" }, AMD64));
  });

  void it("picks the target's manifest from an index, skipping attestations", () => {
    const index = [desc(1, { os: "unknown", architecture: "unknown" }), desc(2, ARM64), desc(3, AMD64)];
    assert.equal(selectPlatformManifest(index, AMD64, "t").digest, desc(3).digest);
    assert.equal(
      selectPlatformManifest([desc(4)], AMD64, "t").digest,
      desc(4).digest,
      "a single unlabelled entry",
    );
    assert.throws(
      () =>
        selectPlatformManifest([desc(2, ARM64), desc(5, { os: "linux", architecture: "s390x" })], AMD64, "t"),
      /no image for linux\/amd64; the index has linux\/arm64, linux\/s390x/,
    );
  });

  void it("refuses a config for another machine", () => {
    const config = { architecture: "arm64", os: "linux", config: { Labels: {} }, diffIds: [] };
    assert.throws(
      () => checkConfigPlatform(config, AMD64, "t"),
      /the image is for linux\/arm64, not linux\/amd64/,
    );
    checkConfigPlatform(config, ARM64, "t");
  });
});
