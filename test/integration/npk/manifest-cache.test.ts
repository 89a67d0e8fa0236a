// The parsed-manifest cache of openNpk (src/npk/npk.ts): a known manifest comes from the cache,
// a damaged entry falls back to the YAML, the cache never lets a package past its signature, and
// the daemon's repository scan writes the cache and serves the same packages with it.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import pino from "pino";
import { openNpk, type ManifestCache } from "../../../src/npk/npk.js";
import { pack } from "../../../src/npk/pack.js";
import { readPublicKey } from "../../../src/npk/signature.js";
import type { RepositoryConfig } from "../../../src/daemon/config/schema.js";
import { Repository } from "../../../src/daemon/repository/repository.js";
import { createFixture, type Fixture } from "./fixtures.js";

class MapCache implements ManifestCache {
  readonly entries = new Map<string, string>();
  gets = 0;
  get(digest: string): string | undefined {
    this.gets++;
    return this.entries.get(digest);
  }
  set(digest: string, json: string): void {
    this.entries.set(digest, json);
  }
}

void describe("manifest cache", () => {
  let fx: Fixture;
  let signed: string;
  before(async () => {
    fx = await createFixture("skiff-manifest-cache-");
    signed = join(fx.dir, "hello-signed.npk");
    await pack({ manifestPath: fx.manifest, rootDir: fx.root, out: signed, keyPath: fx.secretKey });
  });
  after(() => fx.cleanup());

  void it("stores a parsed manifest and gives back the same manifest from it", async () => {
    const cache = new MapCache();
    const first = await openNpk(signed, { manifestCache: cache });
    assert.equal(cache.entries.size, 1);
    const second = await openNpk(signed, { manifestCache: cache });
    assert.deepEqual(second.manifest, first.manifest);
  });

  void it("falls back to the YAML when an entry is damaged or names another manifest", async () => {
    const cache = new MapCache();
    const reference = await openNpk(signed, { manifestCache: cache });
    const [digest] = [...cache.entries.keys()];
    for (const bad of ["{", JSON.stringify({ name: "..", version: "1.0.0" }), "[]"]) {
      cache.entries.set(digest!, bad);
      const npk = await openNpk(signed, { manifestCache: cache });
      assert.deepEqual(npk.manifest, reference.manifest, `entry ${bad}`);
    }
  });

  void it("checks the signature before the cache is asked", async () => {
    const cache = new MapCache();
    const key = await readPublicKey(fx.publicKey);
    await openNpk(signed, { key, manifestCache: cache });
    const unsigned = join(fx.dir, "hello-unsigned.npk");
    await pack({ manifestPath: fx.manifest, rootDir: fx.root, out: unsigned });
    const gets = cache.gets;
    await assert.rejects(openNpk(unsigned, { key, manifestCache: cache }), /signature/);
    assert.equal(cache.gets, gets);
  });

  void it("is written by the repository scan and used by the next one", async () => {
    const runDir = join(fx.dir, "run");
    const repoDir = join(fx.dir, "repo");
    const config: RepositoryConfig = {
      id: "cached",
      type: "fs",
      dir: repoDir,
      mountOnStart: false,
      readOnly: false,
    };
    const repo = await Repository.open(config, runDir);
    await pack({ manifestPath: fx.manifest, rootDir: fx.root, out: join(repoDir, "hello-0.0.2.npk") });
    const log = pino({ level: "silent" });
    const first = await repo.scan(log);
    const cacheFile = join(runDir, "manifest-cache", "cached.json");
    const written = JSON.parse(await readFile(cacheFile, "utf8")) as Record<string, string>;
    assert.equal(Object.keys(written).length, 1);
    const second = await repo.scan(log);
    assert.deepEqual(
      second.map((p) => p.npk.manifest),
      first.map((p) => p.npk.manifest),
    );
    // A damaged cache file is ignored, and rewritten.
    await writeFile(cacheFile, "not json");
    const third = await repo.scan(log);
    assert.deepEqual(
      third.map((p) => p.npk.manifest),
      first.map((p) => p.npk.manifest),
    );
    assert.deepEqual(JSON.parse(await readFile(cacheFile, "utf8")), written);
  });
});
