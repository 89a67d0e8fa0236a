import assert from "node:assert/strict";
import { test } from "node:test";
import semver from "semver";
import { isValidVersion } from "../../../src/protocol/container.js";

// protocol/container.ts carries semver's `valid` as one expression so that the CLI does not load
// semver; this keeps the two the same rule.
const CASES = [
  "1.0.0",
  "0.0.0",
  "v1.2.3",
  " 1.2.3 ",
  "=1.2.3",
  "01.2.3",
  "1.02.3",
  "1.2",
  "1",
  "1.2.3.4",
  "1.2.3-alpha",
  "1.2.3-alpha.1",
  "1.2.3-0.3.7",
  "1.2.3-01",
  "1.2.3-0a",
  "1.2.3-x.7.z.92",
  "1.2.3-",
  "1.2.3-alpha..1",
  "1.2.3+build",
  "1.2.3+build.01",
  "1.2.3-rc.1+build.5",
  "1.2.3+",
  "1.2.3+a+b",
  "1.2.3-a_b",
  "V1.2.3",
  "vv1.2.3",
  "9007199254740991.0.0",
  "9007199254740992.0.0",
  "1.2.99999999999999999999",
  "1.2.3-99999999999999999999",
  "",
  " ",
  "1.2.3\n",
  `1.2.3-${"a".repeat(250)}`,
  `1.2.3-${"a".repeat(251)}`,
  "1.2.3 -a",
  "1 .2.3",
];

test("isValidVersion answers as semver.valid", () => {
  for (const v of CASES) assert.equal(isValidVersion(v), semver.valid(v) !== null, JSON.stringify(v));
});
