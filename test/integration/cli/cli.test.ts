import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { SKIFF, startDaemonProcess, type DaemonProcess } from "../../helpers/daemon.js";
import { waitFor } from "../../helpers/wait.js";

const exec = promisify(execFile);

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function skiff(...args: string[]): Promise<Run> {
  try {
    const { stdout, stderr } = await exec(process.execPath, [SKIFF, ...args]);
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

describe("skiff CLI against a real daemon", () => {
  let d: DaemonProcess;
  before(async () => {
    d = await startDaemonProcess(
      (dir) => `
[repositories.mem]
type = "mem"
[console.listonly]
url = "unix://${dir}/listonly.sock"
permissions = ["list"]
`,
    );
  });
  after(async () => {
    await d.stop();
  });

  it("ls prints a table header and --json a wire line", async () => {
    const table = await skiff("-u", d.url, "ls");
    assert.equal(table.code, 0);
    assert.match(table.stdout, /^NAME\s+VERSION\s+REPOSITORY\s+MOUNTED\s+STATE\s+PID\n$/);
    const json = await skiff("-u", d.url, "list", "--json");
    assert.deepEqual(JSON.parse(json.stdout), { response: { list: [] } });
  });

  it("repositories and ident", async () => {
    const repos = await skiff("--json", "-u", d.url, "repositories");
    assert.deepEqual(JSON.parse(repos.stdout), { response: { repositories: ["mem"] } });
    assert.match((await skiff("-u", d.url, "repos")).stdout, /REPOSITORY\nmem\n/);
    const ident = await skiff("-u", d.url, "ident");
    assert.equal(ident.stdout, "extern:0.0.0\n");
    assert.deepEqual(JSON.parse((await skiff("-u", d.url, "ident", "--json")).stdout), {
      response: { ident: "extern:0.0.0" },
    });
  });

  it("inspect of an unknown container exits 1 with the error", async () => {
    const r = await skiff("-u", d.url, "inspect", "nope:1.0.0");
    assert.equal(r.code, 1);
    assert.match(r.stderr, /invalid container \(container: nope:1\.0\.0\)/);
    const byName = await skiff("-u", d.url, "inspect", "nope");
    assert.equal(byName.code, 1);
  });

  it("usage errors exit 2", async () => {
    assert.equal((await skiff("frobnicate")).code, 2);
    assert.equal((await skiff("-u", d.url, "inspect")).code, 2);
    assert.equal((await skiff("-u", d.url, "ls", "--bogus")).code, 2);
    assert.equal((await skiff("-u", d.url, "events", "-n", "zero")).code, 2);
    assert.equal((await skiff("-u", d.url, "inspect", "bad/name")).code, 2);
  });

  it("permission denied and unreachable daemons exit 1", async () => {
    const denied = await skiff("-u", `unix://${d.dir}/listonly.sock`, "shutdown");
    assert.equal(denied.code, 1);
    assert.match(denied.stderr, /permission denied for shutdown/);
    const missing = await skiff("-u", `unix://${d.dir}/missing.sock`, "ls");
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /cannot connect/);
  });

  it("completion prints scripts for bash and zsh", async () => {
    assert.match((await skiff("completion", "bash")).stdout, /complete -F _skiff skiff/);
    assert.match((await skiff("completion", "zsh")).stdout, /#compdef skiff/);
    assert.equal((await skiff("completion", "fish")).code, 2);
  });

  it("help lists the commands", async () => {
    const r = await skiff("--help");
    assert.equal(r.code, 0);
    assert.match(r.stdout, /notifications\s+Print notifications/);
  });

  it("notifications -n 1 receives the shutdown notification; shutdown stops the daemon", async () => {
    const events = skiff("-u", d.url, "events", "-n", "1", "--json");
    // The daemon logs each subscription; shut down only once this one is registered.
    await waitFor(() => d.log().includes("client subscribed to notifications"), {
      timeoutMs: 30_000,
      what: "the daemon to log the subscription",
      detail: () => d.log().slice(-3000),
    });
    const stop = await skiff("-u", d.url, "shutdown");
    assert.equal(stop.code, 0);
    const got = await events;
    assert.equal(got.code, 0);
    assert.deepEqual(JSON.parse(got.stdout), { notification: "shutdown" });
    assert.equal(await d.stop(), 0);
  });
});
