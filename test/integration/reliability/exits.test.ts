/**
 * The exit guarantee, case by case (the chaos test mixes them): an exit during start-up is held
 * for the first subscriber, and an exit a crashed daemon repeats carries the same instance id,
 * which the client library drops by itself.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { copyFile, readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { connect } from "../../../src/client/index.js";
import type { Notification } from "../../../src/protocol/messages.js";
import { ContainerHarness } from "../../helpers/containers.js";
import { SKIFFD } from "../../helpers/daemon.js";
import { Skiffd, waitUntil } from "./skiffd.js";

type Exit = Extract<Notification, { type: "exit" }>;

const exitsOf = (daemon: Skiffd, container: string): Exit[] =>
  daemon.received.flatMap(({ notification: n }) =>
    n.type === "exit" && n.container === container ? [n] : [],
  );

describe("exits across daemon crashes", () => {
  const cleanups: (() => Promise<void>)[] = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  });

  async function setUp(): Promise<{ h: ContainerHarness; daemon: Skiffd }> {
    const h = await ContainerHarness.create();
    const daemon = new Skiffd(h);
    cleanups.push(async () => {
      await daemon.forceCleanup();
      await h.close();
    });
    await daemon.writeConfig();
    return { h, daemon };
  }

  it("a re-adopted container that exits before anyone subscribed is reported to the first subscriber", async () => {
    const { h, daemon } = await setUp();
    const id = await h.add(h.name("soon"), "/bin/sh", ["-c", "sleep 0.5; exit 5"]);
    await daemon.start();
    await daemon.subscriber!.start(id);
    await daemon.kill9();
    // The next daemon, without a subscriber until it has handled the exit.
    let log = "";
    const child = spawn(process.execPath, [SKIFFD, "--config", daemon.configPath], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    daemon.child = child;
    child.stderr.on("data", (d: Buffer) => (log += d.toString()));
    await waitUntil(`the exit to be handled:\n${log}`, () => /exited: exit code 5/.test(log));
    await waitUntil("the console", () => /console listening/.test(log));
    const subscriber = await connect(h.url, { notifications: true });
    cleanups.push(() => Promise.resolve(subscriber.close()));
    const got: Notification[] = [];
    void (async () => {
      for await (const n of subscriber.notifications()) got.push(n);
    })().catch(() => undefined);
    await waitUntil("the exit to reach the subscriber", () => got.some((n) => n.type === "exit"), 10_000);
    const exit = got.find((n): n is Exit => n.type === "exit")!;
    assert.equal(exit.container, id);
    assert.deepEqual(exit.status, { type: "exit", code: 5, reason: "shutdown" });
    assert.ok(exit.instance, "it carries its instance id");
  });

  it("a crash after the delivery and before the record is retired repeats the exit with the same instance id; the client drops it", async () => {
    const { h, daemon } = await setUp();
    const id = await h.add(h.name("once"), "/bin/sh", ["-c", "sleep 0.3; exit 42"]);
    const dir = join(daemon.stateDir, "log", "containers", h.name("once"));
    await daemon.start();
    await daemon.subscriber!.start(id);
    await daemon.kill9();
    // While no daemon runs, the container ends and its monitor writes the exit record; what the
    // next daemon finds is kept aside, to be put back as if that daemon died before retiring it.
    await waitUntil("the exit record", () =>
      readFile(join(dir, "exit.json")).then(
        () => true,
        () => false,
      ),
    );
    for (const f of ["instance.json", "exit.json"]) await copyFile(join(dir, f), join(h.dir, f));
    await daemon.start();
    await waitUntil("the exit", () => exitsOf(daemon, id).length === 1);
    const [first] = exitsOf(daemon, id);
    assert.deepEqual(first!.status, { type: "exit", code: 42, reason: "shutdown" });
    // The record is retired once the notification went out.
    await waitUntil("the record to be retired", () =>
      readFile(join(dir, "instance.json")).then(
        () => false,
        () => true,
      ),
    );
    await daemon.kill9();
    for (const f of ["instance.json", "exit.json"]) await copyFile(join(h.dir, f), join(dir, f));

    // The next daemon reports it again, with the same instance id: the reconnecting subscriber's
    // SeenExits recognises it, and the client library does not deliver it a second time.
    await daemon.start();
    await waitUntil("the repeat to reach the subscriber", () =>
      daemon.seenExits.dropped.includes(first!.instance!),
    );
    assert.equal(exitsOf(daemon, id).length, 1, "the client library delivered it once");
    await waitUntil("the repeated record to be retired", () =>
      readFile(join(dir, "instance.json")).then(
        () => false,
        () => true,
      ),
    );
    assert.equal(await daemon.stop(), 0);
  });
});
