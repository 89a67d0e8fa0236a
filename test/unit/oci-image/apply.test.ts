// The layer applier on a temporary root: whiteouts, opaque directories (with the same layer's
// entries kept), replacement of files by directories and back, hard links, and the refusals.
import assert from "node:assert/strict";
import { mkdtemp, readFile, readdir, readlink, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, before, describe, it } from "node:test";
import { ByteBudget, LayerApplier, type ImageLayer } from "../../../src/oci-image/apply.js";
import { sha256Digest } from "../../../src/oci-image/digest.js";
import { makeTar, type TarMember } from "../../integration/oci-image/fixtures.js";

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "skiff-oci-apply-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

let roots = 0;
async function applyAll(layers: TarMember[][], max = 1 << 20): Promise<string> {
  const root = await mkdtemp(join(dir, `root-${++roots}-`));
  const applier = new LayerApplier(root, { budget: new ByteBudget(max) });
  for (const [i, members] of layers.entries()) {
    const tar = await makeTar(members);
    const layer: ImageLayer = {
      what: `layer ${i + 1}`,
      digest: sha256Digest(tar),
      size: tar.length,
      compression: "none",
      open: () => Promise.resolve(Readable.from([tar])),
    };
    await applier.apply(layer, sha256Digest(tar));
  }
  return root;
}

async function tree(root: string, sub = ""): Promise<string[]> {
  const out: string[] = [];
  for (const name of (await readdir(join(root, sub))).sort()) {
    const path = sub === "" ? name : `${sub}/${name}`;
    out.push(path);
    if ((await stat(join(root, path)).catch(() => undefined))?.isDirectory() === true)
      out.push(...(await tree(root, path)));
  }
  return out;
}

const BASE: TarMember[] = [
  { name: "bin/", type: "directory" },
  { name: "bin/tool", content: "#!/bin/sh\n", mode: 0o755 },
  { name: "bin/alias", type: "symlink", linkname: "tool" },
  { name: "etc/", type: "directory" },
  { name: "etc/rmme", content: "x" },
  { name: "etc/keep", content: "x" },
  { name: "data/", type: "directory" },
  { name: "data/old", content: "old" },
  { name: "data/sub/deep", content: "deep" },
];

void describe("LayerApplier", () => {
  void it("applies whiteouts and opaque directories from a later layer", async () => {
    const root = await applyAll([
      BASE,
      [
        { name: "etc/.wh.rmme" },
        { name: "data/.wh..wh..opq" },
        { name: "data/new", content: "new" },
        { name: "bin/.wh.alias" },
        { name: ".wh.nothing-there" },
      ],
    ]);
    assert.deepEqual(await tree(root), ["bin", "bin/tool", "data", "data/new", "etc", "etc/keep"]);
    assert.equal((await stat(join(root, "bin/tool"))).mode & 0o777, 0o755);
  });

  void it("keeps what the same layer wrote before an opaque marker, at every depth", async () => {
    const root = await applyAll([
      BASE,
      [
        { name: "data/sub/", type: "directory" },
        { name: "data/sub/mine", content: "mine" },
        { name: "data/.wh..wh..opq" },
        { name: "etc/fresh", content: "f" },
        { name: "etc/.wh.fresh" },
      ],
    ]);
    assert.deepEqual(
      await tree(root, "data"),
      ["data/sub", "data/sub/mine"],
      "data/old and data/sub/deep hidden",
    );
    assert.equal(
      await readFile(join(root, "etc/fresh"), "utf8"),
      "f",
      "a whiteout does not hide its own layer's file",
    );
  });

  void it("replaces files by directories and directories by files and symlinks", async () => {
    const root = await applyAll([
      BASE,
      [
        { name: "etc/rmme/", type: "directory" },
        { name: "etc/rmme/inside", content: "i" },
        { name: "data", content: "now a file" },
        { name: "bin/tool", type: "symlink", linkname: "/bin/busybox" },
      ],
    ]);
    assert.equal(await readFile(join(root, "etc/rmme/inside"), "utf8"), "i");
    assert.equal(await readFile(join(root, "data"), "utf8"), "now a file");
    assert.equal(await readlink(join(root, "bin/tool")), "/bin/busybox");
  });

  void it("makes hard links to regular files in the tree, across layers", async () => {
    const root = await applyAll([BASE, [{ name: "etc/hard", type: "link", linkname: "bin/tool" }]]);
    assert.equal((await stat(join(root, "etc/hard"))).ino, (await stat(join(root, "bin/tool"))).ino);
    await assert.rejects(
      applyAll([BASE, [{ name: "etc/hl", type: "link", linkname: "bin/alias" }]]),
      /not a regular file in the image/,
    );
    await assert.rejects(
      applyAll([BASE, [{ name: "etc/hl", type: "link", linkname: "nope" }]]),
      /not a regular file in the image/,
    );
  });

  void it("refuses writes, whiteouts and links through symlinks, even ones pointing inside", async () => {
    const linkDir: TarMember = { name: "lnk", type: "symlink", linkname: "etc" };
    await assert.rejects(
      applyAll([[...BASE, linkDir, { name: "lnk/x", content: "x" }]]),
      /written through the symlink lnk/,
    );
    await assert.rejects(
      applyAll([[...BASE, linkDir], [{ name: "lnk/.wh.keep" }]]),
      /reached through a symlink/,
    );
    await assert.rejects(
      applyAll([[...BASE, linkDir, { name: "h", type: "link", linkname: "lnk/keep" }]]),
      /reached through a symlink/,
    );
    await assert.rejects(
      applyAll([
        [
          { name: "f", content: "x" },
          { name: "f/x", content: "y" },
        ],
      ]),
      /f is not a directory/,
    );
  });

  void it("stops at the unpacked size budget", async () => {
    await assert.rejects(
      applyAll([[{ name: "big", content: Buffer.alloc(64 * 1024) }]], 32 * 1024),
      /unpacks to more than 32768 bytes/,
    );
  });

  void it("refuses a layer whose uncompressed content does not match its diff id", async () => {
    const root = await mkdtemp(join(dir, "diff-"));
    const tar = await makeTar([{ name: "a", content: "a" }]);
    const applier = new LayerApplier(root, { budget: new ByteBudget(1 << 20) });
    const layer: ImageLayer = {
      what: "layer 1",
      size: tar.length,
      compression: "none",
      open: () => Promise.resolve(Readable.from([tar])),
    };
    await assert.rejects(applier.apply(layer, sha256Digest("other")), /\(uncompressed\): digest mismatch/);
  });
});
