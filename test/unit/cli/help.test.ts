import { test } from "node:test";
import assert from "node:assert/strict";
import { GLOBAL_OPTIONS } from "../../../src/cli/command.js";
import { helpText } from "../../../src/cli/help/index.js";
import { HELP_PAGES } from "../../../src/cli/help/pages.js";
import { runCli } from "../../../src/cli/main.js";
import { allCommands } from "../../../src/cli/registry.js";

const COMMANDS = await allCommands();

async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await runCli(argv, { out: (l) => (out += `${l}\n`), err: (l) => (err += `${l}\n`) });
  return { code, out, err };
}

test("every command has a manual page, and every page a command", () => {
  const names = COMMANDS.map((c) => c.name);
  assert.deepEqual(
    names.filter((n) => HELP_PAGES[n] === undefined),
    [],
    "commands without a page in src/cli/help/pages.ts",
  );
  assert.deepEqual(
    Object.keys(HELP_PAGES).filter((n) => !names.includes(n)),
    [],
    "pages of commands that do not exist",
  );
});

test("each page documents exactly the command's flags, and has a description and examples", () => {
  for (const command of COMMANDS) {
    const page = HELP_PAGES[command.name]!;
    assert.ok(page.description.length > 0 && page.description.every((p) => p.length > 20), command.name);
    assert.ok(page.examples.length > 0, `${command.name}: no example`);
    for (const [line, text] of page.examples) {
      assert.match(line, /\bskiff /, `${command.name}: example ${line}`);
      assert.ok(text.length > 0, `${command.name}: example ${line} is not explained`);
    }
    for (const name of Object.keys(command.options ?? {})) {
      assert.ok((page.options?.[name]?.text.length ?? 0) > 0, `skiff ${command.name} --${name} has no text`);
    }
    for (const name of Object.keys(page.options ?? {})) {
      assert.ok(
        name in (command.options ?? {}) || name in GLOBAL_OPTIONS,
        `skiff ${command.name}: the page documents --${name}, which the command does not parse`,
      );
    }
  }
});

test("a page has the sections of a manual page", async () => {
  for (const command of COMMANDS) {
    const text = await helpText(command);
    const sections = text.split("\n").filter((l) => /^[A-Z][A-Z ]+$/.test(l));
    for (const wanted of ["NAME", "SYNOPSIS", "DESCRIPTION", "GLOBAL OPTIONS", "EXIT STATUS", "EXAMPLES"])
      assert.ok(sections.includes(wanted), `skiff ${command.name}: no ${wanted}`);
    assert.ok(text.replace(/\s+/g, " ").includes(`skiff ${command.name} - ${command.summary}`), command.name);
    for (const name of Object.keys(command.options ?? {}))
      assert.ok(text.includes(`--${name}`), `${command.name} --${name}`);
  }
});

test("skiff help COMMAND and skiff COMMAND --help print the same page", async () => {
  for (const name of ["start", "logs", "pack", "ls", "help"]) {
    const viaHelp = await run(["help", name]);
    const viaFlag = await run([name, "--help"]);
    assert.equal(viaHelp.code, 0);
    assert.equal(viaFlag.code, 0);
    assert.equal(viaHelp.out, viaFlag.out);
    assert.match(viaHelp.out, /^NAME\n/);
  }
  const start = await run(["help", "start"]);
  assert.match(start.out, /--debug-hold/);
  assert.match(start.out, /-e, --env KEY=VALUE \(may be repeated\)/);
});

test("skiff help without a command lists them; an unknown one is a usage error", async () => {
  const list = await run(["help"]);
  assert.equal(list.code, 0);
  for (const c of COMMANDS) assert.ok(list.out.includes(`  ${c.name}`), c.name);
  const unknown = await run(["help", "nope"]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.err, /unknown command "nope"/);
});
