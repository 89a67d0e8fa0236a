/**
 * Runtime handlers and the image policy through the CRI endpoint: a real skiffd (in process) with
 * `[cri] socket`, a gRPC client from the vendored api.proto over the real Unix socket, the host's
 * real runc and crun, and Debian's docker-registry on 127.0.0.1.
 *
 * What a handler's liveness is depends on the host: crun refuses hybrid cgroup hosts (this
 * development host), and runs on pure cgroup v2 (the VM lane, docs/testing.md), so the test reads
 * the layout and expects accordingly.
 */
import assert from "node:assert/strict";
import { copyFileSync, existsSync } from "node:fs";
import { mkdtemp, rename, rm } from "node:fs/promises";
import http2 from "node:http2";
import { connect, createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { status, type Client } from "@grpc/grpc-js";
import { pino } from "pino";
import { RuntimeHandlerError, RuntimeHandlers } from "../../../src/cri/handlers.js";
import { detectLayout } from "../../../src/daemon/cgroups/layout.js";
import type { CgroupLayout } from "../../../src/daemon/cgroups/layout.js";
import { startInProcessDaemon } from "../../helpers/daemon.js";
import { call, criClients, refusal, type Message } from "./grpc.js";
import { testPodNetwork } from "./pods-network.js";
import { buildImages, push, startRegistry, type Images, type Registry } from "../oci-image/fixtures.js";

const HOST_RUNC = "/usr/sbin/runc";
const HOST_CRUN = "/usr/bin/crun";

interface Condition {
  type: string;
  status: boolean;
  reason: string;
  message: string;
}
interface HandlerInfo {
  name: string;
  kind: string;
  path: string;
  alive: boolean;
  version?: string;
  problem?: string;
}

/** A daemon with `[cri]` (plus `extra` in that table) and its two CRI clients. */
async function criDaemon(extra: (dir: string) => string = () => "") {
  // A pod network of its own (pods-network.ts), its bridge removed at stop.
  const network = testPodNetwork();
  const daemon = await startInProcessDaemon(
    (dir) => `[cri]\nsocket = "${dir}/cri.sock"\n${network.toml()}${extra(dir)}`,
  );
  const { runtime, images } = criClients(`${daemon.dir}/cri.sock`);
  return {
    daemon,
    runtime,
    images,
    async stop() {
      runtime.close();
      images.close();
      await daemon.stop();
      await network.remove();
    },
  };
}

async function statusOf(client: Client) {
  const answer = await call(client, "Status", { verbose: true });
  const conditions = (answer.status as { conditions: Condition[] }).conditions;
  const info = answer.info as Record<string, string>;
  return {
    conditions: new Map(conditions.map((c) => [c.type, c])),
    handlers: (answer.runtime_handlers as { name: string }[]).map((h) => h.name),
    states: JSON.parse(info.runtimeHandlers!) as HandlerInfo[],
    policy: JSON.parse(info.imagePolicy!) as { allowedRegistries: string[] | "any" },
  };
}

let layout: CgroupLayout;

before(async () => {
  layout = await detectLayout();
});

void describe("CRI runtime handlers", () => {
  void it("lists runc and crun in Status: alive where the host lets them run, dead with the reason where not", async () => {
    const cri = await criDaemon();
    try {
      const answer = await statusOf(cri.runtime);
      const runc = answer.states.find((s) => s.name === "runc")!;
      assert.equal(runc.alive, true, runc.problem);
      assert.equal(runc.kind, "runc");
      assert.match(runc.version!, /^\d/);
      assert.equal(answer.conditions.get("RuntimeReady")?.status, true);
      const handlersReady = answer.conditions.get("RuntimeHandlersReady")!;
      if (!existsSync(HOST_CRUN)) {
        assert.deepEqual(answer.handlers, ["", "runc"]);
        return;
      }
      const crun = answer.states.find((s) => s.name === "crun")!;
      assert.equal(crun.path, HOST_CRUN);
      if (layout.kind === "hybrid") {
        // crun refuses hybrid hosts: reported dead, named in the condition, not offered to pods.
        assert.equal(crun.alive, false);
        assert.match(crun.problem!, /crun .* refuses hybrid cgroup hosts/);
        assert.deepEqual(answer.handlers, ["", "runc"]);
        assert.equal(handlersReady.status, false);
        assert.equal(handlersReady.reason, "RuntimeHandlerDead");
        assert.match(handlersReady.message, /^crun: OCI runtime crun .* refuses hybrid cgroup hosts/);
      } else {
        assert.equal(crun.alive, true, crun.problem);
        assert.deepEqual(answer.handlers, ["", "runc", "crun"]);
        assert.deepEqual(handlersReady, {
          type: "RuntimeHandlersReady",
          status: true,
          reason: "",
          message: "",
        });
      }
    } finally {
      await cri.stop();
    }
  });

  void it("reports a configured handler whose binary is missing, and RuntimeReady false when none is alive", async () => {
    const some = await criDaemon(
      (dir) =>
        `[cri.runtime_handlers.runc]\n[cri.runtime_handlers.gone]\nkind = "runc"\npath = "${dir}/gone"\n`,
    );
    try {
      const answer = await statusOf(some.runtime);
      assert.deepEqual(answer.handlers, ["", "runc"]);
      assert.equal(answer.conditions.get("RuntimeReady")?.status, true);
      const handlersReady = answer.conditions.get("RuntimeHandlersReady")!;
      assert.equal(handlersReady.status, false);
      assert.equal(handlersReady.message, `gone: OCI runtime runc: ${some.daemon.dir}/gone not found`);
    } finally {
      await some.stop();
    }
    const none = await criDaemon(
      (dir) => `[cri.runtime_handlers.gone]\nkind = "runc"\npath = "${dir}/gone"\n`,
    );
    try {
      const answer = await statusOf(none.runtime);
      assert.deepEqual(answer.handlers, []);
      const ready = answer.conditions.get("RuntimeReady")!;
      assert.equal(ready.status, false);
      assert.equal(ready.reason, "NoRuntimeHandler");
      assert.match(ready.message, /^gone: OCI runtime runc: .*\/gone not found$/);
    } finally {
      await none.stop();
    }
  });

  void it("picks: a named live handler, refuses an unknown or dead one, spreads the rest, and takes a handler back once it works", async () => {
    const dir = await mkdtemp(join(tmpdir(), "skiff-handlers-"));
    try {
      copyFileSync(HOST_RUNC, join(dir, "runc"));
      copyFileSync(HOST_RUNC, join(dir, "spare"));
      const handlers = await RuntimeHandlers.detect({
        configured: [
          { name: "runc", kind: "runc", path: join(dir, "runc") },
          { name: "spare", kind: "runc", path: join(dir, "spare") },
          { name: "gone", kind: "runc", path: join(dir, "gone") },
        ],
        daemonRuntime: { kind: "runc" },
        layout,
        log: pino({ level: "silent" }),
      });
      const refused = async (name: string) => {
        try {
          await handlers.pick(name);
        } catch (e) {
          assert.ok(e instanceof RuntimeHandlerError, String(e));
          return e;
        }
        assert.fail(`pick(${name}) succeeded`);
      };

      const picked = await handlers.pick("spare");
      assert.deepEqual(picked.runtime, handlers.runtimeOf("spare"));
      assert.equal(picked.runtime.path, join(dir, "spare"));
      assert.equal(picked.runtime.kind, "runc");

      const unknown = await refused("kata");
      assert.equal(unknown.kind, "unknown");
      assert.equal(
        unknown.message,
        'runtime handler "kata" is not configured (this node has: runc, spare, gone)',
      );
      const dead = await refused("gone");
      assert.equal(dead.kind, "dead");
      assert.equal(dead.message, `runtime handler gone is dead: OCI runtime runc: ${dir}/gone not found`);

      // "" spreads over the live ones (no load given: round robin), never onto the dead one.
      const spreadPicks = [];
      for (let i = 0; i < 4; i++) spreadPicks.push((await handlers.pick("")).name);
      assert.deepEqual(spreadPicks, ["runc", "spare", "runc", "spare"]);
      // With the pod store's counts: the least-loaded.
      assert.equal((await handlers.pick("", (h) => (h === "runc" ? 2 : 5))).name, "runc");

      // Broken after the last probe: the next check (Status does one) finds it and picks avoid it.
      await rename(join(dir, "spare"), join(dir, "spare.away"));
      const states = await handlers.check();
      assert.match(states.find((s) => s.name === "spare")!.problem!, /spare not found/);
      assert.equal((await refused("spare")).kind, "dead");
      assert.equal(handlers.runtimeOf("spare"), undefined);
      for (let i = 0; i < 3; i++) assert.equal((await handlers.pick("")).name, "runc");

      // Back: a pick of the dead handler probes it again and uses it, no restart needed.
      await rename(join(dir, "spare.away"), join(dir, "spare"));
      assert.equal((await handlers.pick("spare")).name, "spare");

      // None alive: "" is refused with every reason.
      await rename(join(dir, "runc"), join(dir, "runc.away"));
      await rename(join(dir, "spare"), join(dir, "spare.away"));
      await handlers.check();
      const none = await refused("");
      assert.equal(none.kind, "none_alive");
      assert.match(none.message, /^no runtime handler is alive: runc: .*runc not found; spare: .*; gone: .*/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

void describe("CRI socket", () => {
  void it("answers a client that sends the socket's path as :authority (grpc-go dialing a path: crictl 1.26, older kubelets)", async () => {
    const cri = await criDaemon();
    const socket = `${cri.daemon.dir}/cri.sock`;
    const session = http2.connect("http://localhost", { createConnection: () => connect(socket) });
    try {
      // Three calls on one connection, so header blocks after the first are read with the
      // (emptied) dynamic table too.
      for (let i = 0; i < 3; i++) {
        const request = session.request({
          ":method": "POST",
          ":path": "/runtime.v1.RuntimeService/Version",
          ":authority": socket,
          "content-type": "application/grpc",
          te: "trailers",
        });
        const answer = await new Promise<{ status: string | undefined; body: Buffer }>((resolve, reject) => {
          const body: Buffer[] = [];
          let grpcStatus: string | undefined;
          request.on("response", (headers) => (grpcStatus ??= headers["grpc-status"] as string | undefined));
          request.on(
            "trailers",
            (trailers) => (grpcStatus ??= trailers["grpc-status"] as string | undefined),
          );
          request.on("data", (chunk: Buffer) => body.push(chunk));
          request.on("end", () => resolve({ status: grpcStatus, body: Buffer.concat(body) }));
          request.on("error", reject);
          request.end(Buffer.from([0, 0, 0, 0, 0])); // an empty VersionRequest
        });
        assert.equal(answer.status, "0");
        assert.ok(answer.body.includes(Buffer.from("skiff")), answer.body.toString("latin1"));
      }
    } finally {
      session.close();
      await cri.stop();
    }
  });
});

void describe("CRI image policy", () => {
  let images: Images;
  let registry: Registry;
  let cri: Awaited<ReturnType<typeof criDaemon>>;

  before(async () => {
    images = await buildImages();
    registry = await startRegistry(images.dir);
    await push(images, registry, "test/policy:1.0");
    cri = await criDaemon(() => `allowed_registries = ["${registry.host}", "registry.example.com"]\n`);
  });

  after(async () => {
    await cri?.stop();
    await registry?.stop();
    await images?.cleanup();
  });

  void it("pulls from an allowed registry", async () => {
    const pulled = await call(cri.images, "PullImage", {
      image: { image: `${registry.host}/test/policy:1.0` },
    });
    assert.match(pulled.image_ref as string, /^sha256:[0-9a-f]{64}$/);
    const answer = await statusOf(cri.runtime);
    assert.deepEqual(answer.policy.allowedRegistries, [registry.host, "registry.example.com"]);
  });

  void it("refuses any other registry with PERMISSION_DENIED before connecting to it", async () => {
    // A listener that counts connections stands in for the other registry.
    let connections = 0;
    const other = createServer((socket) => {
      connections++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => other.listen(0, "127.0.0.1", resolve));
    const host = `127.0.0.1:${(other.address() as AddressInfo).port}`;
    try {
      const error = await refusal(
        call(cri.images, "PullImage", { image: { image: `${host}/test/policy:1.0` } }),
      );
      assert.equal(error.code, status.PERMISSION_DENIED);
      assert.equal(
        error.details,
        `image ${host}/test/policy is from registry ${host}, which [cri] allowed_registries does not allow (allowed: ${registry.host}, registry.example.com)`,
      );
      assert.equal(connections, 0);
      const hub = await refusal(call(cri.images, "PullImage", { image: { image: "busybox" } }));
      assert.equal(hub.code, status.PERMISSION_DENIED);
      assert.match(hub.details, /^image docker\.io\/library\/busybox is from registry docker\.io/);
      // Nothing stored, and the endpoint still serves.
      const listed = (await call(cri.images, "ListImages", {})).images as Message[];
      assert.ok(listed.every((i) => !(i.repo_tags as string[]).some((t) => t.startsWith(host))));
    } finally {
      await new Promise<void>((resolve) => other.close(() => resolve()));
    }
  });
});
