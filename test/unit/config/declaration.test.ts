import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { defaultsOf, tomlPaths } from "../../../src/daemon/config/declare.js";
import {
  CONFIG_KEYS,
  CONSOLE_OPTION_KEYS,
  DEFAULT_CONSOLE_OPTIONS,
} from "../../../src/daemon/config/schema.js";
import { parseConfig } from "../../../src/daemon/config/load.js";

const root = new URL("../../../../", import.meta.url);
const docs = [
  readFileSync(new URL("README.md", root), "utf8"),
  ...readdirSync(new URL("docs/", root))
    .filter((name) => name.endsWith(".md"))
    .map((name) => readFileSync(new URL(`docs/${name}`, root), "utf8")),
].join("\n");

describe("the configuration's one declaration", () => {
  it("is what the docs describe: every key is named in README.md or docs/", () => {
    const paths = tomlPaths(CONFIG_KEYS);
    assert.ok(paths.includes("console.*.options.idle_timeout") && paths.includes("runtime.probe_timeout"));
    const undocumented = paths.filter((path) => !docs.includes(path.split(".").at(-1)!));
    assert.deepEqual(undocumented, []);
  });

  it("gives the defaults an empty file reads", () => {
    const config = parseConfig("");
    assert.deepEqual(config.containerConsoleOptions, DEFAULT_CONSOLE_OPTIONS);
    assert.deepEqual(DEFAULT_CONSOLE_OPTIONS, defaultsOf(CONSOLE_OPTION_KEYS));
    assert.equal(config.listeners[0]?.options.idleTimeoutMs, 5 * 60_000);
    assert.equal(DEFAULT_CONSOLE_OPTIONS.idleTimeoutMs, 0);
    assert.deepEqual(config.runtime, { kind: "runc" });
    assert.equal(config.metrics, undefined);
    assert.equal(config.freezeTimeoutMs, 2000);
    assert.equal(config.runDir, "/var/lib/skiff/run");
  });
});
