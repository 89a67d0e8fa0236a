/**
 * Northstar's example northstar.toml (test/fixtures/northstar.toml) starts skiffd: only its
 * paths are pointed at a scratch directory, its console at a free port and its cgroup at a
 * unique name. A `[debug]` command that writes a file shows `<PID>` and `<CONTAINER>` at work.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { copyFile, mkdir, mkdtemp, readdir, readFile, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { connect, type Client } from "../../../src/client/index.js";
import { PACKAGE_ROOT, SKIFFD } from "../../helpers/daemon.js";
import { EXAMPLE_PUB } from "../../helpers/npk.js";
import { waitFor as waitForCondition, within } from "../../helpers/wait.js";
import { cleanupDaemon, testCgroupName } from "../../helpers/cleanup.js";

const HELLO = join(PACKAGE_ROOT, "examples/build/hello-world-0.0.1.npk");

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Polls `probe` until it returns a value, failing after `timeoutMs`. */
async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  return waitForCondition(probe, { timeoutMs, what });
}

describe("Northstar's example northstar.toml", () => {
  let dir: string;
  let child: ChildProcess;
  let log = "";
  let client: Client;
  let exited: Promise<number | null>;

  const cgroup = testCgroupName();
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "skiff-test-ns-"));
    const port = await freePort();
    const fixture = await readFile(join(PACKAGE_ROOT, "test/fixtures/northstar.toml"), "utf8");
    const debugCommand = `touch ${dir}/debug-<CONTAINER>-<PID>`;
    const config = fixture
      .replaceAll("target/northstar", dir)
      .replaceAll("examples/northstar.pub", EXAMPLE_PUB)
      .replace("tcp://localhost:4200", `tcp://127.0.0.1:${port}`)
      .replace(`cgroup = "northstar"`, `cgroup = "${cgroup}"`)
      .replace("commands = [", `commands = [\n    "${debugCommand}",`);
    await writeFile(join(dir, "northstar.toml"), config);
    await mkdir(join(dir, "repository")); // run_dir, data_dir and socket_dir are skiffd's to create
    await copyFile(HELLO, join(dir, "repository", "hello-world-0.0.1.npk"));

    child = spawn(process.execPath, [SKIFFD, "--config", join(dir, "northstar.toml")], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    child.stderr!.on("data", (d: Buffer) => (log += d.toString()));
    exited = new Promise((resolve) => child.once("exit", (code) => resolve(code)));
    client = await waitFor("skiffd's console", async () => {
      if (child.exitCode !== null) throw new Error(`skiffd exited:\n${log}`);
      return connect(`tcp://127.0.0.1:${port}`).catch(() => undefined);
    });
  });
  after(async () => {
    client?.close();
    if (child?.exitCode === null) child.kill("SIGTERM");
    try {
      await within(exited, { timeoutMs: 60_000, what: "skiffd to exit after SIGTERM", detail: () => log });
    } finally {
      if (child?.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await cleanupDaemon({ dir, cgroup, runDir: join(dir, "run") });
    }
  });

  it("starts skiffd, whose console answers list", async () => {
    assert.deepEqual(await client.list(), ["hello-world:0.0.1"]);
    assert.deepEqual((await client.repositories()).sort(), ["default", "memory"]);
    assert.equal((await client.inspect("hello-world:0.0.1")).mounted, true, "mount_on_start");
  });

  it("logs once what has no meaning in Skiff", () => {
    assert.equal(log.match(/loop_device_timeout: accepted/g)?.length, 1);
  });

  it("runs [debug] commands at container start with <PID> and <CONTAINER> substituted", async () => {
    await client.start("hello-world:0.0.1");
    const file = await waitFor("the debug command's file", async () =>
      (await readdir(dir)).find((name) => name.startsWith("debug-")),
    );
    const match = /^debug-hello-world:0\.0\.1-(\d+)$/.exec(file);
    assert.ok(match, `unexpected file ${file}`);
    assert.ok(Number(match[1]) > 1, "a host pid");
    await waitFor("the command's exit in the log", async () =>
      /debug command exited with code 0/.test(log) ? true : undefined,
    );
  });
});
