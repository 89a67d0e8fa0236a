import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  chooseName,
  chooseVersion,
  mapProcess,
  parseGroup,
  parsePasswd,
  resolveUser,
  versionFromText,
} from "../../../src/oci-image/config-mapping.js";
import { OciImageError } from "../../../src/oci-image/errors.js";

const PASSWD = parsePasswd(
  "root:x:0:0:root:/root:/bin/sh\n# comment\nbroken line\napp:x:1234:2345::/:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n",
);
const GROUPS = parseGroup("root:x:0:\nstaff:x:50:app\napp:x:2345:\nbad:x:notanumber:\n");

void describe("passwd and group", () => {
  void it("skips comments and malformed lines", () => {
    assert.deepEqual(
      PASSWD.map((p) => p.name),
      ["root", "app", "nobody"],
    );
    assert.deepEqual(GROUPS, [
      { name: "root", gid: 0 },
      { name: "staff", gid: 50 },
      { name: "app", gid: 2345 },
    ]);
  });
});

void describe("resolveUser", () => {
  void it("resolves names, numbers and mixes", () => {
    assert.deepEqual(resolveUser("app", PASSWD, GROUPS), { uid: 1234, gid: 2345 });
    assert.deepEqual(resolveUser("app:staff", PASSWD, GROUPS), { uid: 1234, gid: 50 });
    assert.deepEqual(resolveUser("1234", PASSWD, GROUPS), { uid: 1234, gid: 2345 });
    assert.deepEqual(resolveUser("1000:1000", [], []), { uid: 1000, gid: 1000 });
    assert.deepEqual(resolveUser("app:7", PASSWD, GROUPS), { uid: 1234, gid: 7 });
  });

  void it("refuses root however it is written", () => {
    for (const spec of ["", "root", "0", "0:0", "root:app", "app:root", "app:0", "1000:0"]) {
      assert.throws(() => resolveUser(spec, PASSWD, GROUPS), /runs as (root|uid 0|gid 0)/, spec);
    }
  });

  void it("refuses unknown names, unknown primary groups and ids over 65535", () => {
    assert.throws(() => resolveUser("ghost", PASSWD, GROUPS), /no user "ghost"/);
    assert.throws(() => resolveUser("app:ghosts", PASSWD, GROUPS), /no group "ghosts"/);
    assert.throws(() => resolveUser("1000", PASSWD, GROUPS), /its group is unknown: use UID:GID/);
    assert.throws(() => resolveUser("70000:1", PASSWD, GROUPS), /at most 65535/);
  });
});

void describe("mapProcess", () => {
  void it("joins Entrypoint and Cmd and maps Env", () => {
    const warnings: string[] = [];
    const mapped = mapProcess(
      {
        Entrypoint: ["/bin/sh", "-c"],
        Cmd: ["echo hi"],
        Env: ["PATH=/usr/bin:/bin", "EMPTY=", "EQ=a=b", "SKIFF_NAME=x"],
        WorkingDir: "/srv",
        Volumes: ["/data"],
        Labels: {},
      },
      (w) => warnings.push(w),
    );
    assert.deepEqual(mapped, {
      init: "/bin/sh",
      args: ["-c", "echo hi"],
      env: { PATH: "/usr/bin:/bin", EMPTY: "", EQ: "a=b" },
    });
    assert.equal(warnings.length, 3);
    assert.match(warnings[0]!, /SKIFF_NAME dropped/);
    assert.match(warnings[1]!, /WorkingDir \/srv ignored/);
    assert.match(warnings[2]!, /Volume \/data not mounted/);
  });

  void it("uses Cmd alone, and leaves init out when there is no command", () => {
    assert.deepEqual(
      mapProcess({ Cmd: ["httpd", "-f"], Labels: {} }, () => undefined),
      {
        init: "httpd",
        args: ["-f"],
        env: {},
      },
    );
    assert.deepEqual(
      mapProcess({ Labels: {} }, () => undefined),
      { args: [], env: {} },
    );
    assert.deepEqual(
      mapProcess({ WorkingDir: "/", Labels: {} }, () => assert.fail("no warning for /")),
      {
        args: [],
        env: {},
      },
    );
  });

  void it("refuses Env entries that are not NAME=VALUE", () => {
    assert.throws(
      () => mapProcess({ Cmd: ["x"], Env: ["NOEQUALS"], Labels: {} }, () => undefined),
      OciImageError,
    );
    assert.throws(() => mapProcess({ Cmd: ["x"], Env: ["=v"], Labels: {} }, () => undefined), OciImageError);
  });
});

void describe("name and version", () => {
  void it("prefers the flag, then the title annotation, then the repository", () => {
    assert.equal(chooseName("flag", { "org.opencontainers.image.title": "title" }, "a/repo"), "flag");
    assert.equal(chooseName(undefined, { "org.opencontainers.image.title": "title" }, "a/repo"), "title");
    assert.equal(chooseName(undefined, {}, "library/busybox"), "busybox");
    assert.throws(() => chooseName(undefined, {}, undefined), /pass --name/);
    assert.throws(
      () => chooseName(undefined, { "org.opencontainers.image.title": "a b" }, undefined),
      /not a valid container name/,
    );
  });

  void it("reads versions from the annotation or the tag", () => {
    assert.equal(versionFromText("1"), "1.0.0");
    assert.equal(versionFromText("1.36"), "1.36.0");
    assert.equal(versionFromText("v2.3.4"), "2.3.4");
    assert.equal(versionFromText("1.2.3-rc1"), "1.2.3-rc1");
    assert.equal(versionFromText("latest"), undefined);
    assert.equal(chooseVersion(undefined, { "org.opencontainers.image.version": "3.0" }, "latest"), "3.0.0");
    assert.equal(chooseVersion(undefined, {}, "1.2"), "1.2.0");
    assert.equal(chooseVersion("9.9.9", {}, "latest"), "9.9.9");
    assert.throws(() => chooseVersion(undefined, {}, "latest"), /"latest" is not a version: pass --version/);
    assert.throws(() => chooseVersion(undefined, {}, undefined), /no version annotation or tag/);
  });
});
