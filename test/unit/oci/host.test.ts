import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import {
  parseGroupFile,
  parseProcLimits,
  resolveGroupIds,
  resolveNetwork,
} from "../../../src/daemon/oci/host.js";
import { RLIM_INFINITY } from "../../../src/daemon/oci/spec.js";
import { parseManifest } from "../../../src/npk/manifest/index.js";
import { BASE } from "./fixtures.js";

const LIMITS = `Limit                     Soft Limit           Hard Limit           Units     
Max cpu time              unlimited            unlimited            seconds   
Max stack size            8388608              unlimited            bytes     
Max processes             96365                96365                processes 
Max open files            1024                 20000                files     
Max locked memory         8388608              8388608              bytes     
Max nice priority         0                    0                    
Max realtime timeout      unlimited            unlimited            us        
`;

void describe("parseProcLimits", () => {
  void it("reads hard limits by manifest resource name, unlimited as RLIM_INFINITY", () => {
    assert.deepEqual(parseProcLimits(LIMITS), {
      cpu: RLIM_INFINITY,
      stack: RLIM_INFINITY,
      nproc: 96365n,
      nofile: 20000n,
      memlock: 8388608n,
      nice: 0n,
      rttime: RLIM_INFINITY,
    });
  });

  void it("reads this process's limits", async () => {
    const { readFile } = await import("node:fs/promises");
    const hard = parseProcLimits(await readFile("/proc/self/limits", "utf8"));
    assert.equal(Object.keys(hard).length, 16);
  });

  void it("rejects a row it cannot read", () => {
    assert.throws(
      () => parseProcLimits("Max open files            1024                 lots      files\n"),
      /hard limit/,
    );
  });
});

void describe("parseGroupFile", () => {
  void it("maps names to gids, skipping malformed lines; the first entry wins", () => {
    const groups = parseGroupFile("root:x:0:\naudio:x:29:pulse\n\nbroken\nbad:x:gid:\naudio:x:99:\n");
    assert.deepEqual(
      [...groups],
      [
        ["root", 0],
        ["audio", 29],
      ],
    );
  });
});

void describe("image-dependent facts", () => {
  const dir = mkdtempSync(join(tmpdir(), "skiff-host-test-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  void it("resolves supplementary groups from the image's /etc/group, else numerically", async () => {
    const rootfs = join(dir, "image");
    mkdirSync(join(rootfs, "etc"), { recursive: true });
    writeFileSync(join(rootfs, "etc/group"), "audio:x:29:\nvideo:x:44:\n");
    const manifest = parseManifest(`${BASE}suppl_groups: [audio, "500", nobody]\n`);
    assert.deepEqual(await resolveGroupIds(manifest, rootfs), { audio: 29, "500": 500 });
  });

  void it("does not follow an /etc/group symlink out of the image", async () => {
    const rootfs = join(dir, "escape");
    mkdirSync(join(rootfs, "etc"), { recursive: true });
    writeFileSync(join(dir, "host-group"), "audio:x:29:\n");
    symlinkSync(join(dir, "host-group"), join(rootfs, "etc/group"));
    const manifest = parseManifest(`${BASE}suppl_groups: [audio]\n`);
    assert.deepEqual(await resolveGroupIds(manifest, rootfs), {});
  });

  void it("refuses a named network namespace that does not exist or is no namespace", async () => {
    const manifest = parseManifest(`${BASE}network:\n  namespace: skiff-missing\n`);
    await assert.rejects(resolveNetwork(manifest, dir), /skiff-missing does not exist/);
    writeFileSync(join(dir, "skiff-missing"), "");
    await assert.rejects(resolveNetwork(manifest, dir), /is not a namespace file/);
  });

  void it("maps host and absent networks without looking at the host", async () => {
    assert.deepEqual(await resolveNetwork(parseManifest(`${BASE}network: host\n`), dir), { kind: "host" });
    assert.deepEqual(await resolveNetwork(parseManifest(BASE), dir), { kind: "new" });
  });
});
