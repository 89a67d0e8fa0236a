/**
 * The CRI endpoint end to end: a real skiffd (in process) with `[cri] socket`, a gRPC client
 * generated from the same vendored api.proto over the real Unix socket, and images pulled from
 * Debian's docker-registry on 127.0.0.1 (built with umoci and pushed with skopeo by the
 * oci-image fixtures).
 */
import assert from "node:assert/strict";
import { copyFileSync, existsSync } from "node:fs";
import { readdir, readFile, rename } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { credentials, status, type Client, type ServiceError } from "@grpc/grpc-js";
import { loadCriServices } from "../../../src/cri/proto.js";
import { UNIMPLEMENTED } from "../../../src/cri/server.js";
import { SKIFF_VERSION } from "../../../src/common/version.js";
import { startInProcessDaemon, type TestDaemon } from "../../helpers/daemon.js";
import { waitFor, within } from "../../helpers/wait.js";
import { listen } from "../../../src/common/listen.js";
import { call, criClients, method, refusal, CALL_TIMEOUT_MS, type Message } from "./grpc.js";
import { testPodNetwork } from "./pods-network.js";
import { buildImages, push, startRegistry, type Images, type Registry } from "../oci-image/fixtures.js";

const HOST_RUNC = "/usr/sbin/runc";

let images: Images;
let registry: Registry;
let daemon: TestDaemon;
const network = testPodNetwork();
let runtimeClient: Client;
let imageClient: Client;

before(async () => {
  images = await buildImages();
  registry = await startRegistry(images.dir);
  await push(images, registry, "test/busybox-app:2.0");
  await push(images, registry, "test/busybox-app:also");
  daemon = await startInProcessDaemon((dir) => `[cri]\nsocket = "${dir}/cri.sock"\n${network.toml()}`);
  ({ runtime: runtimeClient, images: imageClient } = criClients(`${daemon.dir}/cri.sock`));
});

after(async () => {
  runtimeClient?.close();
  imageClient?.close();
  await daemon?.stop();
  await network.remove();
  await registry?.stop();
  await images?.cleanup();
});

void describe("CRI RuntimeService", () => {
  void it("answers Version with skiff, its version and the v1 API", async () => {
    const version = await call(runtimeClient, "Version", { version: "0.1.0" });
    assert.deepEqual(version, {
      version: "0.1.0",
      runtime_name: "skiff",
      runtime_version: SKIFF_VERSION,
      runtime_api_version: "v1",
    });
  });

  void it("answers RuntimeConfig with the cgroupfs driver Skiff uses", async () => {
    assert.deepEqual(await call(runtimeClient, "RuntimeConfig", {}), {
      linux: { cgroup_driver: "CGROUPFS" },
    });
  });

  void it("answers Status: the runtime ready (healthy toolchain), the network ready (the pod bridge is up)", async () => {
    const answer = await call(runtimeClient, "Status", { verbose: true });
    const conditions = (answer.status as { conditions: Message[] }).conditions;
    assert.deepEqual(conditions[0], { type: "RuntimeReady", status: true, reason: "", message: "" });
    assert.deepEqual(conditions[1], { type: "NetworkReady", status: true, reason: "", message: "" });
    const toolchain = JSON.parse((answer.info as Record<string, string>).toolchain!) as { status: string };
    assert.equal(toolchain.status, "ok");
  });

  void it("answers an unimplemented method, unary or streaming, with UNIMPLEMENTED and the reason", async () => {
    const error = await refusal(call(runtimeClient, "CheckpointContainer", { container_id: "c" }));
    assert.equal(error.code, status.UNIMPLEMENTED);
    assert.equal(error.details, UNIMPLEMENTED["RuntimeService/CheckpointContainer"]);

    const stream = method(runtimeClient, "GetContainerEvents")(
      {},
      { deadline: Date.now() + CALL_TIMEOUT_MS },
    ) as NodeJS.EventEmitter;
    const streamError = await new Promise<ServiceError>((resolve, reject) => {
      stream.once("error", resolve);
      stream.once("end", () => reject(new Error("the stream ended without an error")));
      stream.on("data", () => undefined);
    });
    assert.equal(streamError.code, status.UNIMPLEMENTED);
    assert.equal(streamError.details, UNIMPLEMENTED["RuntimeService/GetContainerEvents"]);
  });
});

void describe("CRI Status on a broken toolchain", () => {
  void it("answers RuntimeReady false with ToolchainDegraded and the problem, true once it is back", async () => {
    // The daemon runs a copy of runc, which the test renames away and back.
    const broken = await startInProcessDaemon((dir) => {
      copyFileSync(HOST_RUNC, join(dir, "runc"));
      return `[cri]\nsocket = "${dir}/cri.sock"\n${network.toml()}[runtime]\npath = "${dir}/runc"\n`;
    });
    const runc = join(broken.dir, "runc");
    const services = loadCriServices();
    const client = new services.RuntimeService(`unix:${broken.dir}/cri.sock`, credentials.createInsecure());
    const runtimeReady = async () =>
      ((await call(client, "Status", {})).status as { conditions: Message[] }).conditions[0]!;
    try {
      await rename(runc, `${runc}.away`);
      const ready = await runtimeReady();
      assert.equal(ready.type, "RuntimeReady");
      assert.equal(ready.status, false);
      assert.equal(ready.reason, "ToolchainDegraded");
      assert.match(ready.message as string, /runc: not found/);
      await rename(`${runc}.away`, runc);
      assert.equal((await runtimeReady()).status, true);
    } finally {
      client.close();
      await broken.stop();
    }
  });
});

void describe("CRI ImageService", () => {
  void it("pulls from a registry, lists, reports, shares one copy between tags, and removes", async () => {
    const tag = `${registry.host}/test/busybox-app:2.0`;
    const pulled = await call(imageClient, "PullImage", { image: { image: tag } });
    const id = pulled.image_ref as string;
    assert.match(id, /^sha256:[0-9a-f]{64}$/);

    const listed = (await call(imageClient, "ListImages", {})).images as Message[];
    assert.equal(listed.length, 1);
    const image = listed[0]!;
    assert.equal(image.id, id);
    assert.deepEqual(image.repo_tags, [tag]);
    assert.equal((image.repo_digests as string[]).length, 1);
    assert.match(
      (image.repo_digests as string[])[0]!,
      new RegExp(`^${registry.host}/test/busybox-app@sha256:`),
    );
    assert.equal(image.username, "app");
    assert.ok(Number(image.size) > 0);

    // The unpacked root: layers applied in order, the whiteout of layer 2 honoured.
    const status1 = await call(imageClient, "ImageStatus", { image: { image: tag }, verbose: true });
    assert.equal((status1.image as Message).id, id);
    const rootfs = (status1.info as Record<string, string>).rootfs!;
    assert.ok(rootfs.startsWith(join(daemon.dir, "state")), rootfs);
    assert.match(await readFile(join(rootfs, "etc", "passwd"), "utf8"), /^app:x:1234:2345:/m);
    assert.equal(existsSync(join(rootfs, "etc", "rmme")), false);
    assert.equal(await readFile(join(rootfs, "data", "new"), "utf8"), "fresh\n");

    // The same image under another tag: one stored copy with two names; by ID too.
    const again = await call(imageClient, "PullImage", {
      image: { image: `${registry.host}/test/busybox-app:also` },
    });
    assert.equal(again.image_ref, id);
    const byId = (await call(imageClient, "ImageStatus", { image: { image: id } })).image as Message;
    assert.deepEqual(byId.repo_tags, [tag, `${registry.host}/test/busybox-app:also`]);
    assert.equal(((await call(imageClient, "ListImages", {})).images as Message[]).length, 1);
    const filtered = await call(imageClient, "ListImages", { filter: { image: { image: tag } } });
    assert.equal((filtered.images as Message[]).length, 1);

    const fs = (await call(imageClient, "ImageFsInfo", {})).image_filesystems as Message[];
    assert.equal(fs.length, 1);
    assert.ok(Number((fs[0]!.used_bytes as Message).value) > 0);
    assert.ok(Number((fs[0]!.inodes_used as Message).value) > 0);

    await call(imageClient, "RemoveImage", { image: { image: tag } });
    const gone = await call(imageClient, "ImageStatus", { image: { image: id } });
    assert.equal(gone.image, null);
    assert.deepEqual((await call(imageClient, "ListImages", {})).images, []);
    assert.equal(existsSync(rootfs), false);
    // Removing what is not there succeeds, as CRI asks.
    await call(imageClient, "RemoveImage", { image: { image: tag } });
  });

  void it("stops reading from the registry when the client cancels a pull", async () => {
    // A registry that accepts the manifest request and never answers it.
    let stalled!: () => void;
    const requested = new Promise<void>((resolve) => (stalled = resolve));
    let closed!: () => void;
    const abandoned = new Promise<void>((resolve) => (closed = resolve));
    const stall = createServer((request, response) => {
      if (request.url === "/v2/") return void response.writeHead(200).end("{}");
      request.socket.once("close", closed);
      stalled();
    });
    await listen(stall, { port: 0, host: "127.0.0.1" });
    try {
      const port = (stall.address() as AddressInfo).port;
      const pull = method(imageClient, "PullImage")(
        { image: { image: `127.0.0.1:${port}/stalls:1` } },
        { deadline: Date.now() + CALL_TIMEOUT_MS },
        () => undefined,
      ) as { cancel(): void };
      await within(requested, { timeoutMs: CALL_TIMEOUT_MS, what: "the pull to ask for the manifest" });
      pull.cancel();
      await within(abandoned, {
        timeoutMs: CALL_TIMEOUT_MS,
        what: "the pull to drop its registry connection",
      });
      // The pull's own directory goes once its failure has unwound.
      const tmp = join(daemon.dir, "state", "data", "cri", "tmp");
      await waitFor(async () => (await readdir(tmp)).length === 0 || undefined, {
        timeoutMs: CALL_TIMEOUT_MS,
        what: "the cancelled pull's directory to be removed",
      });
    } finally {
      stall.closeAllConnections();
      await new Promise((resolve) => stall.close(resolve));
    }
  });

  void it("refuses bad references and missing images with a status, and keeps serving", async () => {
    const scheme = await refusal(call(imageClient, "PullImage", { image: { image: "docker://busybox" } }));
    assert.equal(scheme.code, status.INVALID_ARGUMENT);
    const invalid = await refusal(call(imageClient, "PullImage", { image: { image: "Not/Valid:tag!" } }));
    assert.equal(invalid.code, status.INVALID_ARGUMENT);
    const missing = await refusal(
      call(imageClient, "PullImage", { image: { image: `${registry.host}/test/busybox-app:absent` } }),
    );
    assert.equal(missing.code, status.UNAVAILABLE);
    assert.match(missing.details, /MANIFEST_UNKNOWN/);
    const empty = await refusal(call(imageClient, "ImageStatus", { image: { image: "" } }));
    assert.equal(empty.code, status.INVALID_ARGUMENT);
    assert.deepEqual((await call(imageClient, "ListImages", {})).images, []);
    assert.equal((await call(runtimeClient, "Version", {})).runtime_name, "skiff");
  });
});
