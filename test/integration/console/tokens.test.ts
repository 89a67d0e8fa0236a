/**
 * Tokens over real console connections: three container consoles (A, B, C) and a host client,
 * each connection identified by the daemon, never by the request (Northstar's ESR-01-012).
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { promisify } from "node:util";
import { after, before, describe, it } from "node:test";
import { connect, type Client } from "../../../src/client/index.js";
import { SKIFF, startInProcessDaemon, type TestDaemon } from "../../helpers/daemon.js";

const exec = promisify(execFile);

/** Runs the `skiff` CLI; resolves with its exit code and output. */
async function skiff(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec(process.execPath, [SKIFF, ...args]);
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

const unique = `t${randomBytes(3).toString("hex")}`;
const [A, B, C] = ["a", "b", "c"].map((n) => `${unique}-${n}`) as [string, string, string];
const SHARED = Buffer.from("hello").toString("base64");

describe("tokens over container consoles (A, B, C)", () => {
  let d: TestDaemon;
  const clients = new Map<string, Client>();
  const consoleUrls = new Map<string, string>();

  before(async () => {
    d = await startInProcessDaemon(`token_validity = "1m"`);
    for (const name of [A, B, C]) {
      const { socketPath } = await d.runtime.containerConsoles.open(`${name}:0.0.1`, [
        "ident",
        "token_create",
        "token_verification",
      ]);
      consoleUrls.set(name, `unix://${socketPath}`);
      clients.set(name, await connect(`unix://${socketPath}`));
    }
    clients.set("host", await connect(d.url));
  });
  after(async () => {
    for (const client of clients.values()) client.close();
    await d.runtime.containerConsoles.closeAll();
    await d.stop();
  });

  const client = (name: string): Client => clients.get(name)!;
  const create = async (from: string, target: string): Promise<string> =>
    (await client(from).call({ type: "token_create", target, shared: SHARED }, "token")).token;
  const verify = async (on: string, token: string, user: string, shared = SHARED): Promise<string> =>
    (await client(on).call({ type: "token_verify", token, user, shared }, "token_verification")).result;

  it("each connection is its container", async () => {
    assert.equal(await client(A).ident(), `${A}:0.0.1`);
    assert.equal(await client(B).ident(), `${B}:0.0.1`);
  });

  it("B accepts the token A made for it, as A's", async () => {
    const token = await create(A, B);
    assert.equal(Buffer.from(token, "base64").length, 40);
    assert.equal(await verify(B, token, A), "Ok");
  });

  it("B refuses A's token when it is claimed as C's, or with another shared part", async () => {
    const token = await create(A, B);
    assert.equal(await verify(B, token, C), "Invalid");
    assert.equal(await verify(B, token, A, Buffer.from("other").toString("base64")), "Invalid");
  });

  it("C cannot verify a token made for B, nor make one that B takes as A's", async () => {
    assert.equal(await verify(C, await create(A, B), A), "Invalid");
    const fromC = await create(C, B);
    assert.equal(await verify(B, fromC, A), "Invalid");
    assert.equal(await verify(B, fromC, C), "Ok");
  });

  it("a host client is extern, as in Northstar", async () => {
    const token = await create("host", B);
    assert.equal(await verify(B, token, "extern"), "Ok");
    assert.equal(await verify(B, token, A), "Invalid");
  });

  it("skiff token and skiff verify-token", async () => {
    const made = await skiff("-u", d.url, "token", B, "hello");
    assert.equal(made.code, 0, made.stderr);
    const token = made.stdout.trim();
    const onB = await skiff("-u", consoleUrls.get(B)!, "verify-token", token, "extern", "hello");
    assert.deepEqual([onB.code, onB.stdout], [0, "Ok\n"]);
    const json = await skiff("-u", consoleUrls.get(B)!, "--json", "verify-token", token, "extern", "other");
    assert.deepEqual(
      [json.code, JSON.parse(json.stdout)],
      [1, { response: { token_verification: "Invalid" } }],
    );
    const onHost = await skiff("-u", d.url, "verify-token", token, "extern", "hello");
    assert.deepEqual([onHost.code, onHost.stdout], [1, "Invalid\n"]);
    const bad = await skiff("-u", d.url, "verify-token", "AAAA", "extern", "hello");
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /40 bytes in base64/);
  });
});
