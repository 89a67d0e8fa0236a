import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { EXIT_OK, EXIT_RUNTIME_ERROR, UsageError } from "../../../src/cli/command.js";
import type { Command, ParsedCommand } from "../../../src/cli/command.js";
import { inspectNpkCommand, packageCommands } from "../../../src/cli/commands/package.js";
import { isNpkArgument } from "../../../src/cli/commands/query.js";
import { createFixture } from "./fixtures.js";
import type { Fixture } from "./fixtures.js";

let fx: Fixture;
before(async () => {
  fx = await createFixture("cli-test");
});
after(async () => {
  await fx.cleanup();
});

function command(name: string): Command {
  const found = name === "inspect" ? inspectNpkCommand : packageCommands.find((c) => c.name === name);
  assert.ok(found, name);
  return found;
}

async function run(name: string, parsed: ParsedCommand, json = false) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await command(name).run(
    {
      global: { url: "", json, timeoutMs: 0 },
      out: (l) => out.push(l),
      err: (l) => err.push(l),
      signal: new AbortController().signal,
    },
    parsed,
  );
  return { code, out, err };
}

void describe("package commands", () => {
  void it("gen-key, pack (signed, JSON), inspect and unpack", async () => {
    const keys = await run("gen-key", { values: {}, positionals: ["cli", fx.dir] });
    assert.equal(keys.code, EXIT_OK);
    const packed = await run(
      "pack",
      {
        values: { manifest: fx.manifest, root: fx.root, key: join(fx.dir, "cli.key"), out: fx.dir },
        positionals: [],
      },
      true,
    );
    assert.equal(packed.code, EXIT_OK);
    const npk = join(fx.dir, "hello-0.0.2.npk");
    assert.deepEqual(JSON.parse(packed.out[0] ?? ""), { written: [npk] });
    assert.equal(await isNpkArgument(npk), true);
    assert.equal(await isNpkArgument("hello"), false);

    const short = await run("inspect", { values: { short: true }, positionals: [npk] });
    assert.deepEqual(short.out, ["name: hello, version: 0.0.2, NPK version: 0.9.2, resource container: no"]);
    const full = await run("inspect", { values: {}, positionals: [npk] }, true);
    const report = JSON.parse(full.out[0] ?? "") as {
      fsImage: { type: string };
      verity?: { rootHash: string };
    };
    assert.equal(report.fsImage.type, "squashfs");
    assert.match(report.verity?.rootHash ?? "", /^[0-9a-f]{64}$/);

    const out = join(fx.dir, "cli-unpacked");
    assert.equal((await run("unpack", { values: {}, positionals: [npk, out] })).code, EXIT_OK);
    assert.deepEqual((await readdir(out)).sort(), ["manifest.yaml", "root", "signature.yaml"]);
    assert.equal(await readFile(join(out, "root", "greeting.txt"), "utf8"), "Hello from the image\n");
  });

  void it("reports package errors on stderr with exit code 1", async () => {
    const result = await run("inspect", { values: {}, positionals: [fx.manifest] });
    assert.equal(result.code, EXIT_RUNTIME_ERROR);
    assert.match(result.err[0] ?? "", /^skiff inspect: no end of central directory record/);
  });

  void it("rejects bad arguments as usage errors", async () => {
    await assert.rejects(run("pack", { values: { root: fx.root }, positionals: [] }), UsageError);
    await assert.rejects(
      run("pack", {
        values: { manifest: fx.manifest, root: fx.root, compression: "brotli" },
        positionals: [],
      }),
      /-c takes one of/,
    );
    await assert.rejects(run("unpack", { values: {}, positionals: ["only-one"] }), UsageError);
  });
});
