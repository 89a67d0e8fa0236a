import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { parseConfig } from "../../../src/daemon/config/load.js";

describe("the README's configuration example", () => {
  it("is a valid configuration", () => {
    const readme = readFileSync(new URL("../../../../README.md", import.meta.url), "utf8");
    const example = /```toml\n([\s\S]*?)```/.exec(readme)?.[1];
    assert.ok(example, "the README has a TOML example");
    const config = parseConfig(example, "README.md");
    assert.equal(config.groups[0]?.name, "media");
    assert.deepEqual(config.metrics, { host: "127.0.0.1", port: 9100 });
  });
});
