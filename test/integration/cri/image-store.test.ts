/**
 * The CRI image store on a real file system against Debian's docker-registry on 127.0.0.1:
 * tags moving between images, records surviving a re-open, leftovers removed at open, and
 * refusals (platform, size) that store nothing and leave nothing in tmp/.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { after, before, describe, it } from "node:test";
import pino from "pino";
import { parseImageLookup } from "../../../src/cri/image-names.js";
import { ImageStore, MAX_CONCURRENT_PULLS } from "../../../src/cri/image-store.js";
import { OciImageError } from "../../../src/oci-image/errors.js";
import { listen } from "../../../src/common/listen.js";
import { waitFor } from "../../helpers/wait.js";
import { HOST_ARCH, makeTar, startRegistry, writeLayout, type Registry } from "../oci-image/fixtures.js";

const run = promisify(execFile);
const log = pino({ level: "silent" });

let dir: string;
let registry: Registry;

/** Writes a one-layer image holding `/hello` = `content` and pushes it as `nameTag`. */
async function pushImage(nameTag: string, content: string, architecture = HOST_ARCH): Promise<void> {
  const layout = await mkdtemp(join(dir, "layout-"));
  const tar = await makeTar([{ name: "hello", content }]);
  await writeLayout(layout, [{ tar }], { tag: "t", architecture, config: { User: "1000" } });
  await run(
    "skopeo",
    ["copy", "-q", "--dest-tls-verify=false", `oci:${layout}:t`, `docker://${registry.host}/${nameTag}`],
    {
      timeout: 60_000,
    },
  );
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "skiff-cri-store-"));
  registry = await startRegistry(dir);
});

after(async () => {
  await registry?.stop();
  await rm(dir, { recursive: true, force: true });
});

void describe("the CRI image store", () => {
  void it("moves a tag to the image pulled last under it and keeps records across a re-open", async () => {
    const storeDir = join(dir, "store-tags");
    const store = await ImageStore.open(storeDir, log);
    const name = `${registry.host}/small:1`;
    await pushImage("small:1", "first\n");
    const first = await store.pull(name);
    await pushImage("small:1", "second\n");
    const second = await store.pull(name);
    assert.notEqual(first.id, second.id);
    assert.deepEqual(second.repoTags, [name]);
    assert.equal(store.find(parseImageLookup(name))?.id, second.id);
    const older = store.find({ kind: "id", id: first.id });
    assert.deepEqual(older?.repoTags, []);
    assert.equal(older?.repoDigests.length, 1);

    // Leftovers of a crash: a pull in tmp/ and a directory in images/ without a record.
    await mkdir(join(storeDir, "tmp", "pull-crashed", "rootfs"), { recursive: true });
    await mkdir(join(storeDir, "images", "b".repeat(64)), { recursive: true });
    await writeFile(join(storeDir, "images", "not-a-digest"), "junk");

    const reopened = await ImageStore.open(storeDir, log);
    assert.deepEqual(
      reopened.list().sort((a, b) => a.id.localeCompare(b.id)),
      store.list().sort((a, b) => a.id.localeCompare(b.id)),
    );
    assert.deepEqual(await readdir(join(storeDir, "tmp")), []);
    assert.deepEqual(
      (await readdir(join(storeDir, "images"))).sort(),
      [first.id, second.id].map((id) => id.slice(7)).sort(),
    );
    assert.equal(await reopened.remove({ kind: "id", id: first.id }), true);
    assert.equal(await reopened.remove({ kind: "id", id: first.id }), false);
    assert.deepEqual(
      reopened.list().map((r) => r.id),
      [second.id],
    );
  });

  void it("refuses an image for another platform or over its size, storing and leaving nothing", async () => {
    const storeDir = join(dir, "store-refusals");
    const other = HOST_ARCH === "arm64" ? "amd64" : "arm64";
    await pushImage("foreign:1", "elsewhere\n", other);
    const store = await ImageStore.open(storeDir, log);
    await assert.rejects(store.pull(`${registry.host}/foreign:1`), (e: unknown) => {
      assert.ok(e instanceof OciImageError);
      assert.equal(e.kind, "platform");
      return true;
    });
    await pushImage("big:1", "x".repeat(64 * 1024));
    const small = await ImageStore.open(storeDir, log, 1024);
    await assert.rejects(small.pull(`${registry.host}/big:1`), (e: unknown) => {
      assert.ok(e instanceof OciImageError);
      assert.equal(e.kind, "size");
      return true;
    });
    assert.deepEqual(small.list(), []);
    assert.deepEqual(await readdir(join(storeDir, "tmp")), []);
    assert.deepEqual(await readdir(join(storeDir, "images")), []);
  });

  void it(`downloads at most ${MAX_CONCURRENT_PULLS} images at once; later pulls wait their turn`, async () => {
    // A registry that never answers a manifest request: every pull that starts stays started.
    const asked: string[] = [];
    const stall = createServer((request, response) => {
      if (request.url === "/v2/") return void response.writeHead(200).end("{}");
      asked.push(request.url ?? "");
    });
    await listen(stall, { port: 0, host: "127.0.0.1" });
    const store = await ImageStore.open(join(dir, "store-queue"), log);
    const port = (stall.address() as AddressInfo).port;
    const pulls = Array.from({ length: MAX_CONCURRENT_PULLS + 1 }, (_, i) => {
      const controller = new AbortController();
      const result = store.pull(`127.0.0.1:${port}/stalls:${i}`, { signal: controller.signal });
      result.catch(() => undefined); // each is awaited below
      return { controller, result };
    });
    const nextController = new AbortController();
    try {
      await waitFor(() => asked.length === MAX_CONCURRENT_PULLS || undefined, {
        timeoutMs: 60_000,
        what: `${MAX_CONCURRENT_PULLS} pulls to ask for their manifests`,
      });
      // The last one waits for a slot: cancelled there, it fails with the abort's own reason
      // (a pull that had started would fail with the registry reader's error instead).
      const waiting = pulls.at(-1)!;
      const reason = new Error("cancelled while waiting");
      waiting.controller.abort(reason);
      await assert.rejects(waiting.result, (e: unknown) => e === reason);
      // A slot freed by a cancelled download goes to the next pull in line.
      const next = store.pull(`127.0.0.1:${port}/stalls:next`, { signal: nextController.signal });
      next.catch(() => undefined);
      pulls[0]!.controller.abort();
      await assert.rejects(pulls[0]!.result);
      await waitFor(() => asked.some((url) => url.includes("/stalls/manifests/next")) || undefined, {
        timeoutMs: 60_000,
        what: "the queued pull to start once a slot is free",
      });
      assert.equal(asked.length, MAX_CONCURRENT_PULLS + 1);
    } finally {
      for (const pull of pulls) pull.controller.abort();
      nextController.abort();
      stall.closeAllConnections();
      await new Promise((resolve) => stall.close(resolve));
    }
  });
});
