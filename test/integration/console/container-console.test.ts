import assert from "node:assert/strict";
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { pino } from "pino";
import {
  ConnectionClosedError,
  PermissionDeniedError,
  connect,
  type Client,
} from "../../../src/client/index.js";
import {
  ContainerConsoles,
  type ContainerRequestDispatcher,
} from "../../../src/daemon/console/container-console.js";
import { DEFAULT_CONSOLE_OPTIONS } from "../../../src/daemon/config/schema.js";
import type { Response } from "../../../src/protocol/messages.js";
import { startInProcessDaemon, type TestDaemon } from "../../helpers/daemon.js";
import { TestPackages } from "../../helpers/npk.js";
import { RawPeer } from "../../helpers/raw.js";
import { closed as socketClosed, rawSocket, waitUntil, within } from "./proc.js";

const OPTIONS = { ...DEFAULT_CONSOLE_OPTIONS, maxInstallSize: 1024 * 1024 };

describe("container consoles", () => {
  let d: TestDaemon;
  let packages: TestPackages;
  let consoles: ContainerConsoles;
  const closed: [string, number][] = [];
  const requestSessions: number[] = [];

  before(async () => {
    packages = await TestPackages.create();
    const demo = await packages.build("demo");
    d = await startInProcessDaemon(`
[repositories.mem]
type = "mem"
`);
    const admin = await connect(d.url);
    await admin.install("mem", (await stat(demo.path)).size, await readFile(demo.path));
    admin.close();
    // Until the runtime owns one (runtime.containerConsoles), serve requests like Runtime.dispatch.
    const dispatch: ContainerRequestDispatcher = (peer, request, _io, sessionId) => {
      requestSessions.push(sessionId);
      return new Promise<Response>((resolve, reject) => {
        d.runtime.loop
          .enqueue({ kind: "console_request", peer, request, reply: resolve })
          .catch(() => reject(new Error("daemon is shutting down")));
      });
    };
    consoles = new ContainerConsoles({
      runDir: d.runtime.config.runDir,
      options: OPTIONS,
      notificationBufferSize: 16,
      hub: d.runtime.hub,
      dispatch,
      log: pino({ level: "silent" }),
      onSessionClosed: (container, sessionId) => closed.push([container, sessionId]),
    });
  });
  after(async () => {
    await consoles.closeAll();
    await d.stop();
    await packages.remove();
  });

  it("serves the container with exactly its manifest's permissions until closed", async () => {
    const { socketPath } = await consoles.open("demo:1.0.0", ["ident", "list"]);
    assert.equal(socketPath, join(d.runtime.config.runDir, "consoles", "demo:1.0.0.sock"));
    const info = await stat(socketPath);
    assert.ok(info.isSocket());
    assert.equal(info.mode & 0o777, 0o600);
    assert.equal((await stat(consoles.dir)).mode & 0o777, 0o700);
    await assert.rejects(consoles.open("demo:1.0.0", "full"), /already has a console/);

    const client: Client = await connect(`unix://${socketPath}`);
    assert.equal(await client.ident(), "demo:1.0.0");
    assert.deepEqual(await client.list(), ["demo:1.0.0"]);
    await assert.rejects(client.shutdown(), PermissionDeniedError);
    await assert.rejects(client.mount(["demo:1.0.0"]), PermissionDeniedError);
    assert.equal(await client.ident(), "demo:1.0.0", "the connection stays usable after a refusal");
    assert.equal(consoles.connections("demo:1.0.0"), 1);
    const sessionId = requestSessions[0]!;
    assert.ok(
      requestSessions.every((id) => id === sessionId),
      "requests carry their session id",
    );

    const refused = await RawPeer.open(`unix://${socketPath}`);
    assert.deepEqual(await refused.handshake("0.9.2", true), { connect_nack: "permission_denied" });
    await refused.closed;

    await consoles.close("demo:1.0.0");
    await assert.rejects(client.ident(), ConnectionClosedError);
    client.close();
    await assert.rejects(stat(socketPath), { code: "ENOENT" });
    assert.deepEqual(consoles.containers, []);
    assert.ok(closed.some(([c, id]) => c === "demo:1.0.0" && id === sessionId));
    await consoles.close("demo:1.0.0"); // closing again is a no-op
  });

  it("subscribes a container with the notifications permission, owner and long names", async () => {
    const name = "n".repeat(200);
    const { socketPath } = await consoles.open(`${name}:1.0.0`, ["notifications", "ident"], {
      uid: 1000,
      gid: 1000,
    });
    assert.ok(Buffer.byteLength(socketPath) <= 107, "the socket path fits in sun_path");
    const info = await stat(socketPath);
    assert.deepEqual([info.uid, info.gid], [1000, 1000]);

    const client = await connect(`unix://${socketPath}`, { notifications: true });
    assert.equal(await client.ident(), `${name}:1.0.0`);
    d.runtime.hub.broadcast({ type: "install", container: "other:1.0.0" });
    // The first subscriber also gets what was held since start-up (demo's install; docs/containers.md).
    const notifications = client.notifications();
    let first = await notifications.next();
    if (first.value?.type === "install" && first.value.container === "demo:1.0.0")
      first = await notifications.next();
    assert.deepEqual(first.value, { type: "install", container: "other:1.0.0" });
    await consoles.close(`${name}:1.0.0`);
    client.close();
  });

  it("serves at most max_connections at once; a further connection is closed on accept", async () => {
    const bounded = new ContainerConsoles({
      runDir: join(d.runtime.config.runDir, "bounded"),
      options: { ...OPTIONS, maxConnections: 2 },
      notificationBufferSize: 16,
      hub: d.runtime.hub,
      dispatch: () => Promise.reject(new Error("no request is sent in this test")),
      log: pino({ level: "silent" }),
    });
    try {
      const { socketPath } = await bounded.open("demo:1.0.0", ["ident"]);
      const url = `unix://${socketPath}`;
      const held = [await RawPeer.open(url), await RawPeer.open(url)];
      for (const peer of held) assert.deepEqual(await peer.handshake("0.9.2", false), { connect_ack: null });
      const third = await rawSocket(url);
      await within("the third connection closed", socketClosed(third));
      assert.equal(bounded.connections("demo:1.0.0"), 2);
      held[0]!.close();
      await waitUntil(
        "a slot freed",
        () => bounded.connections("demo:1.0.0"),
        (n) => n === 1,
      );
      const fourth = await RawPeer.open(url);
      assert.deepEqual(
        await fourth.handshake("0.9.2", false),
        { connect_ack: null },
        "a freed slot serves again",
      );
      fourth.close();
      held[1]!.close();
    } finally {
      await bounded.closeAll();
    }
  });

  it("reopens after a close, and refuses to open after closeAll", async () => {
    const opened = await consoles.open("demo:1.0.0", "full");
    const client = await connect(`unix://${opened.socketPath}`);
    await consoles.close("demo:1.0.0");
    client.close();
    const again = await consoles.open("demo:1.0.0", "full");
    const second = await connect(`unix://${again.socketPath}`);
    assert.deepEqual(await second.repositories(), ["mem"]);
    second.close();
    await consoles.closeAll();
    await assert.rejects(stat(again.socketPath), { code: "ENOENT" });
    await assert.rejects(consoles.open("demo:1.0.0", "full"), /shutting down/);
  });
});
