import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { closeSync, constants, existsSync, openSync, writeFileSync, writeSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { createConnection, createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { watchWakeSource } from "../../../src/daemon/power/wake-sources.js";
import { waitFor as waitForCondition, within } from "../../helpers/wait.js";

/** Counts fires; `next()` resolves at the next one. */
function fireCounter(): { onFire: () => void; readonly count: number; next: () => Promise<void> } {
  let count = 0;
  let waiters: (() => void)[] = [];
  return {
    onFire: () => {
      count += 1;
      for (const wake of waiters) wake();
      waiters = [];
    },
    get count() {
      return count;
    },
    // Bounded: a source that never fires fails the test instead of hanging it.
    next: () =>
      within(new Promise<void>((resolve) => waiters.push(resolve)), {
        timeoutMs: 20_000,
        what: "the wake source to fire",
      }),
  };
}

/** Long enough for anything already written to have been read and fired. Only used to check that nothing fires. */
const QUIET_MS = 100;

function connect(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ path }, () => resolve(socket));
    socket.once("error", reject);
  });
}

let dir: string;
before(async () => (dir = await mkdtemp(join(tmpdir(), "skiff-wake-"))));
after(() => rm(dir, { recursive: true, force: true }));

describe("FIFO wake sources", () => {
  it("fire on a burst of writes, and again for a writer that comes after the first left", async () => {
    const path = join(dir, "burst.fifo");
    execFileSync("mkfifo", [path]);
    const fires = fireCounter();
    const handle = await watchWakeSource({ type: "path", path }, fires.onFire);
    try {
      let fired = fires.next();
      const writer = openSync(path, constants.O_WRONLY | constants.O_NONBLOCK);
      for (let i = 0; i < 100; i++) writeSync(writer, `event ${i}\n`);
      closeSync(writer);
      await fired;
      assert.ok(fires.count >= 1 && fires.count <= 100);

      // The reader was reopened at end of file, so a new non-blocking writer finds it.
      const before = fires.count;
      fired = fires.next();
      // Between end of file and the reopen nobody reads: ENXIO until the reader is back.
      const again = await waitForCondition(
        () => {
          try {
            return openSync(path, constants.O_WRONLY | constants.O_NONBLOCK);
          } catch (error) {
            if ((error as NodeJS.ErrnoException).code !== "ENXIO") throw error;
            return undefined;
          }
        },
        { timeoutMs: 20_000, what: "the FIFO's reader to be reopened", intervalMs: 5 },
      );
      writeSync(again, "x");
      closeSync(again);
      await fired;
      assert.ok(fires.count > before);
    } finally {
      await handle.close();
    }
  });

  it("never fire after close, even for data a writer sends afterwards", async () => {
    const path = join(dir, "closed.fifo");
    execFileSync("mkfifo", [path]);
    const fires = fireCounter();
    const handle = await watchWakeSource({ type: "path", path }, fires.onFire);
    const writer = openSync(path, constants.O_WRONLY | constants.O_NONBLOCK);
    // Written and closed in the same turn: the data may be readable already, its fire must not come.
    writeSync(writer, "early\n");
    await handle.close();
    await handle.close(); // idempotent
    const reader = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK); // keeps writes from failing
    try {
      writeSync(writer, "late\n");
      await sleep(QUIET_MS);
      assert.equal(fires.count, 0);
    } finally {
      closeSync(writer);
      closeSync(reader);
    }
  });
});

describe("socket path wake sources", () => {
  it("listen on a missing path, fire on connections and data, and remove the socket on close", async () => {
    const path = join(dir, "new.sock");
    const fires = fireCounter();
    const handle = await watchWakeSource({ type: "path", path }, fires.onFire);
    let fired = fires.next();
    const client = await connect(path);
    client.on("error", () => undefined); // writing after the daemon closed the connection
    await fired;
    const afterConnect = fires.count;
    fired = fires.next();
    client.write("ping");
    await fired;
    assert.ok(fires.count > afterConnect);

    await handle.close();
    const atClose = fires.count;
    client.write("after close"); // the connection was closed by the daemon: nothing may fire
    await sleep(QUIET_MS);
    client.destroy();
    assert.equal(fires.count, atClose);
    assert.equal(existsSync(path), false);
    await assert.rejects(connect(path), { code: "ENOENT" });
  });

  it("replace a socket left by an earlier run", async () => {
    const path = join(dir, "stale.sock");
    // A process that exits without closing its listener leaves the socket file behind.
    const script = `require("net").createServer().listen(${JSON.stringify(path)}, () => process.exit(0))`;
    assert.equal(spawnSync(process.execPath, ["-e", script]).status, 0);
    assert.equal(existsSync(path), true);
    const fires = fireCounter();
    const handle = await watchWakeSource({ type: "path", path }, fires.onFire);
    try {
      const fired = fires.next();
      (await connect(path)).destroy();
      await fired;
    } finally {
      await handle.close();
    }
  });

  it("refuse a socket another process listens on, a regular file and a proxy source", async () => {
    const path = join(dir, "live.sock");
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(path, resolve));
    try {
      await assert.rejects(
        watchWakeSource({ type: "path", path }, () => undefined),
        /another process listens/,
      );
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
    const file = join(dir, "plain");
    writeFileSync(file, "");
    await assert.rejects(
      watchWakeSource({ type: "path", path: file }, () => undefined),
      /is a regular file: expected a FIFO/,
    );
    await assert.rejects(
      watchWakeSource({ type: "path", path: "relative" }, () => undefined),
      /must be absolute/,
    );
    await assert.rejects(
      watchWakeSource({ type: "proxy", channel: "c" }, () => undefined),
      /proxy counter/,
    );
  });
});

describe("timer wake sources", () => {
  it("fire once, after a delay or at a time already past", async () => {
    for (const source of [
      { type: "timer", after_ms: 20 },
      { type: "timer", at_ms: Date.now() - 1000 },
    ] as const) {
      const fires = fireCounter();
      const handle = await watchWakeSource(source, fires.onFire);
      await fires.next();
      await sleep(QUIET_MS);
      assert.equal(fires.count, 1);
      await handle.close();
    }
  });

  it("do not fire once closed, nor once their signal is aborted", async () => {
    const fires = fireCounter();
    const closed = await watchWakeSource({ type: "timer", after_ms: 30 }, fires.onFire);
    await closed.close();
    const abort = new AbortController();
    await watchWakeSource({ type: "timer", at_ms: Date.now() + 30 }, fires.onFire, { signal: abort.signal });
    abort.abort();
    await sleep(QUIET_MS);
    assert.equal(fires.count, 0);
    await assert.rejects(
      watchWakeSource({ type: "timer", after_ms: 1 }, fires.onFire, { signal: abort.signal }),
      {
        name: "AbortError",
      },
    );
  });

  it("refuse timers without exactly one valid time", async () => {
    await assert.rejects(
      watchWakeSource({ type: "timer" }, () => undefined),
      /exactly one of at_ms and after_ms/,
    );
    await assert.rejects(
      watchWakeSource({ type: "timer", at_ms: 1, after_ms: 1 }, () => undefined),
      /exactly one/,
    );
    await assert.rejects(
      watchWakeSource({ type: "timer", after_ms: -5 }, () => undefined),
      /after_ms must be a finite number >= 0/,
    );
  });
});
