import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseMountInfo } from "../../../src/daemon/mount/mountinfo.js";
import type { Manifest } from "../../../src/npk/manifest/index.js";
import { mountPointDirs, squashfsPseudoFile } from "../../../src/npk/mkfs.js";
import { detectFsType } from "../../../src/npk/npk.js";
import { cloneManifests } from "../../../src/npk/pack.js";

const manifest: Manifest = {
  name: "hello",
  version: "0.0.1",
  init: "/hello",
  uid: 1000,
  gid: 1001,
  mounts: {
    "/srv/www": { type: "bind", host: "/srv", options: "rw,nosuid" },
    "/lib": { type: "bind", host: "/lib" },
    "/proc": { type: "proc" },
    "/data": { type: "persist" },
    "/res": { type: "resource", name: "r", version: ">=1.0.0", dir: "/" },
  },
};

void describe("fs.img layout", () => {
  void it("lists every mount point level once, with Northstar's modes", () => {
    assert.deepEqual(mountPointDirs(manifest), [
      { path: "/dev", mode: 0o755 },
      { path: "/data", mode: 0o755 },
      { path: "/lib", mode: 0o555 },
      { path: "/proc", mode: 0o444 },
      { path: "/res", mode: 0o555 },
      { path: "/srv", mode: 0o755 },
      { path: "/srv/www", mode: 0o755 },
    ]);
  });

  void it("formats mksquashfs pseudo definitions", () => {
    const text = squashfsPseudoFile(mountPointDirs({ mounts: { "/a/b": { type: "tmpfs", size: 1 } } }), 7, 8);
    assert.equal(text, "/dev d 755 7 8\n/a d 755 7 8\n/a/b d 755 7 8\n");
  });

  void it("names clones like sextant and leaves resource containers alone", () => {
    assert.deepEqual(
      cloneManifests(manifest, 12).map((m) => m.name),
      ["00", "01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11"].map((n) => `hello-${n}`),
    );
    const { init: _init, ...resource } = manifest;
    assert.deepEqual(cloneManifests(resource, 3), [resource]);
    assert.deepEqual(cloneManifests(manifest, undefined), [manifest]);
  });

  void it("recognizes squashfs and erofs by magic", () => {
    const squashfs = Buffer.from("hsqs\0\0\0\0");
    assert.equal(detectFsType(squashfs), "squashfs");
    const erofs = Buffer.alloc(2048);
    erofs.writeUInt32LE(0xe0f5e1e2, 1024);
    assert.equal(detectFsType(erofs), "erofs");
    assert.equal(detectFsType(Buffer.alloc(2048)), undefined);
  });
});

void describe("mountinfo", () => {
  void it("finds source and type, unescaping octal sequences", () => {
    const text =
      "42 27 7:0 / /tmp/a\\040b ro,nosuid,nodev,relatime shared:1 - squashfs /dev/loop0 ro,errors=continue\n" +
      "43 27 0:39 / /mnt ro,relatime - erofs /x/y.npk ro,fsoffset=4096\n";
    assert.deepEqual(parseMountInfo(text), [
      { id: 42, mountPoint: "/tmp/a b", fsType: "squashfs", source: "/dev/loop0" },
      { id: 43, mountPoint: "/mnt", fsType: "erofs", source: "/x/y.npk" },
    ]);
  });
});
