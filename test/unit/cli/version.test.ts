import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { describe, it } from "node:test";
import { promisify } from "node:util";
import { runCli } from "../../../src/cli/main.js";
import { PROTOCOL_VERSION } from "../../../src/protocol/version.js";

const ROOT = new URL("../../../../", import.meta.url);

async function packageVersion(): Promise<string> {
  return (JSON.parse(await readFile(new URL("package.json", ROOT), "utf8")) as { version: string }).version;
}

describe("versions", () => {
  it("skiff --version and -V print Skiff's and the protocol's version, exit 0", async () => {
    const expected = `skiff ${await packageVersion()} (console protocol ${PROTOCOL_VERSION})`;
    for (const flag of ["--version", "-V"]) {
      const out: string[] = [];
      const code = await runCli([flag], { out: (l) => out.push(l), err: (l) => out.push(l) });
      assert.equal(code, 0);
      assert.deepEqual(out, [expected]);
    }
  });

  it("skiffd --version prints its version and exits 0, and both bins are executable after a build", async () => {
    const skiffd = new URL("dist/src/daemon/main.js", ROOT).pathname;
    const { stdout } = await promisify(execFile)(skiffd, ["--version"]);
    assert.equal(stdout, `skiffd ${await packageVersion()} (console protocol ${PROTOCOL_VERSION})\n`);
    const skiff = new URL("dist/src/cli/main.js", ROOT).pathname;
    const cli = await promisify(execFile)(skiff, ["--version"]);
    assert.match(cli.stdout, /^skiff \S+ \(console protocol /);
  });
});
