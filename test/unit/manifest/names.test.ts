import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isValidContainerName, parseManifest } from "../../../src/npk/manifest/index.js";
import { containerIdProblem, nameProblem } from "../../../src/protocol/container.js";
import { assertRejected, BASE } from "./helpers.js";

const named = (name: string) => BASE.replace("name: hello", `name: "${name}"`);
const resource = (dir: string, name = "res") =>
  BASE +
  `mounts:\n  /r:\n    type: resource\n    name: "${name}"\n    version: '>=1.0.0'\n    dir: "${dir}"\n`;

void describe("the container name rule (one safe path component)", () => {
  void it("refuses . and .., which Northstar's character set lets through", () => {
    for (const name of [".", ".."]) {
      assert.equal(isValidContainerName(name), false);
      assert.match(nameProblem(name)!, /must not be/);
      assertRejected(named(name), "name", /must not be/);
      assert.match(containerIdProblem(`${name}:1.0.0`)!, /must not be/);
    }
  });

  void it("still accepts names with dots that are not . or ..", () => {
    for (const name of ["...", ".hidden", "a..b", "a.", "-", "_"]) {
      assert.equal(isValidContainerName(name), true, name);
      assert.equal(parseManifest(named(name)).name, name);
    }
  });

  void it("applies the same rule to resource, group and socket names", () => {
    assertRejected(resource("/", ".."), "mounts./r.name", /must not be/);
    assertRejected(BASE + 'group: ".."\n', "group", /must not be/);
    assertRejected(
      BASE + 'sockets:\n  "..":\n    type: stream\n    mode: 0o600\n',
      "sockets...",
      /must not be/,
    );
    assertRejected(
      BASE + 'sockets:\n  "a/b":\n    type: stream\n    mode: 0o600\n',
      "sockets.a/b",
      /socket name/,
    );
  });
});

void describe("resource mount dir", () => {
  void it("refuses .. escapes and . components", () => {
    for (const dir of ["/../../..", "/..", "/data/../../etc", "/./data", "data"]) {
      assertRejected(resource(dir), "mounts./r.dir", /absolute path without \. or \.\./);
    }
  });

  void it("accepts normalisable absolute paths", () => {
    for (const dir of ["/", "/data", "/usr//share/", "/a/.b/c..d"]) parseManifest(resource(dir));
  });
});
