import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { COMMAND_MODULES, findCommand } from "../../../src/cli/registry.js";
import { COMMAND_MODULE_WORDS } from "../../../src/cli/words.js";

/** src/cli/ as built (dist/src/cli/): words.ts's `source` paths are relative to it. */
const CLI = new URL("../../../src/cli/", import.meta.url);

describe("command registry", () => {
  it("lists exactly the names and aliases of each module's commands", async () => {
    for (const module of COMMAND_MODULES) {
      const words = (await module.load()).flatMap((c) => [c.name, ...(c.aliases ?? [])]);
      assert.deepEqual([...module.words].sort(), words.sort());
    }
  });

  it("finds a command by name or alias, and nothing for an unknown word", async () => {
    assert.equal((await findCommand("ls"))?.name, "list");
    assert.equal((await findCommand("gen-key"))?.name, "gen-key");
    assert.equal(await findCommand("no-such-command"), undefined);
  });

  it("gives `inspect` the options of `inspect NPK`, which it hands package files to", async () => {
    const { inspectNpkCommand } = await import("../../../src/cli/commands/package.js");
    assert.deepEqual((await findCommand("inspect"))?.options, inspectNpkCommand.options);
  });

  it("gives each word to one module only", () => {
    const words = COMMAND_MODULES.flatMap((m) => m.words);
    assert.equal(new Set(words).size, words.length);
  });

  it("names, for each module's bundle, the module its loader imports (scripts/build-cli.mjs)", async () => {
    for (const [i, entry] of COMMAND_MODULE_WORDS.entries()) {
      const exported = Object.values((await import(new URL(entry.source, CLI).href)) as object);
      for (const command of await COMMAND_MODULES[i]!.load())
        assert.ok(exported.flat().includes(command), entry.source);
    }
  });
});
