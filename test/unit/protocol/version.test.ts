import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isCompatibleClientVersion, parseProtocolVersion } from "../../../src/protocol/version.js";
import {
  containerIdProblem,
  formatContainerId,
  nameOf,
  parseContainerId,
  versionOf,
} from "../../../src/protocol/container.js";

describe("protocol version", () => {
  it("accepts equal or higher major.minor, ignores patch", () => {
    assert.equal(isCompatibleClientVersion("0.9.2", "0.9.2"), true);
    assert.equal(isCompatibleClientVersion("0.9.7", "0.9.2"), true);
    assert.equal(isCompatibleClientVersion("0.9.0", "0.9.2"), true);
    assert.equal(isCompatibleClientVersion("0.9.3-pre", "0.9.2"), true);
    assert.equal(isCompatibleClientVersion("0.10.0", "0.9.2"), true);
    assert.equal(isCompatibleClientVersion("0.8.9", "0.9.2"), false);
    assert.equal(isCompatibleClientVersion("garbage", "0.9.2"), false);
  });
  it("parses versions", () => {
    assert.deepEqual(parseProtocolVersion("1.2.3-rc.1"), { major: 1, minor: 2, patch: 3, suffix: "-rc.1" });
    assert.equal(parseProtocolVersion("1.2"), undefined);
  });
});

describe("container ids", () => {
  it("parses name:version", () => {
    assert.deepEqual(parseContainerId("hello-world:0.0.1"), { name: "hello-world", version: "0.0.1" });
    assert.equal(containerIdProblem("a_b.c-d:1.2.3-pre"), undefined);
  });
  it("splits a checked id into name and version, and joins them back", () => {
    assert.equal(nameOf("a_b.c-d:1.2.3-pre+build.1"), "a_b.c-d");
    assert.equal(versionOf("a_b.c-d:1.2.3-pre+build.1"), "1.2.3-pre+build.1");
    assert.equal(formatContainerId("hello", "0.0.1"), "hello:0.0.1");
  });
  it("rejects bad ids", () => {
    assert.match(containerIdProblem("hello")!, /name:version/);
    assert.match(containerIdProblem(":1.0.0")!, /empty/);
    assert.match(containerIdProblem("x:1.0")!, /invalid version/);
    assert.match(containerIdProblem(`${"a".repeat(1025)}:1.0.0`)!, /longer than 1024/);
  });
});
