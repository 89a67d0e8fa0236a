/**
 * `skiff pack --from-oci` end to end: images built by umoci and copied by skopeo (fixtures.ts)
 * packed from every source kind by the real CLI, run in a real skiffd, and hostile or broken
 * images refused with nothing left behind. The CLI runs with a private TMPDIR so "nothing left
 * behind" is an exact check.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { cp, mkdir, mkdtemp, open, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { inspectFull } from "../../../src/npk/unpack.js";
import { genKey } from "../../../src/npk/signature.js";
import { ContainerHarness } from "../../helpers/containers.js";
import { SKIFF } from "../../helpers/daemon.js";
import {
  APP_GID,
  APP_UID,
  GREETING,
  HOST_ARCH,
  SCRIPT,
  buildImages,
  makeTar,
  push,
  startRegistry,
  writeLayout,
  type Images,
  type Registry,
} from "./fixtures.js";

const run = promisify(execFile);
const OTHER_ARCH = HOST_ARCH === "arm64" ? "amd64" : "arm64";

let images: Images;
let registry: Registry;
let keys: { secretPath: string; publicPath: string };
let work: string;

before(async () => {
  images = await buildImages();
  registry = await startRegistry(images.dir);
  await push(images, registry, "test/busybox-app:2.0");
  work = await mkdtemp(join(tmpdir(), "skiff-oci-test-"));
  keys = await genKey(work, "oci");
});

after(async () => {
  await registry?.stop();
  await images?.cleanup();
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

interface PackRun {
  code: number;
  stdout: string;
  stderr: string;
  out: string;
  tmp: string;
}

let runs = 0;
/** Runs `skiff pack --from-oci SOURCE ARGS…` with its own TMPDIR and output directory. */
async function packFrom(source: string, args: string[] = []): Promise<PackRun> {
  const base = join(work, `run-${++runs}`);
  const out = join(base, "out");
  const tmp = join(base, "tmp");
  await mkdir(out, { recursive: true });
  await mkdir(tmp);
  try {
    const { stdout, stderr } = await run(
      process.execPath,
      [SKIFF, "pack", "--from-oci", source, "-k", keys.secretPath, "-o", out, "-c", "none", ...args],
      { env: { ...process.env, TMPDIR: tmp }, timeout: 120_000 },
    );
    return { code: 0, stdout, stderr, out, tmp };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    if (typeof err.code !== "number") throw e;
    return { code: err.code, stdout: err.stdout ?? "", stderr: err.stderr ?? "", out, tmp };
  }
}

/** Asserts a refusal: exit 1, the reason on stderr, and no NPK, partial file or temp dir left. */
async function assertRefused(r: PackRun, reason: RegExp): Promise<void> {
  assert.equal(r.code, 1, `expected a refusal, got ${r.code}: ${r.stdout}${r.stderr}`);
  assert.match(r.stderr, reason);
  assert.deepEqual(await readdir(r.out), [], "no NPK or partial file in the output directory");
  assert.deepEqual(await readdir(r.tmp), [], "no temporary directory left");
}

interface Proxy {
  host: string;
  close(): Promise<void>;
}

/**
 * An HTTP server on 127.0.0.1 in front of the fixture registry: `intercept` may answer a request
 * itself (returns true); otherwise it is forwarded and `rewrite` may change the response body.
 */
async function registryProxy(
  intercept: (req: IncomingMessage, res: ServerResponse, port: number) => boolean,
  rewrite: (path: string, body: Buffer) => Buffer = (_path, body) => body,
): Promise<Proxy> {
  const server: Server = createServer((req, res) => {
    const { port } = server.address() as { port: number };
    if (intercept(req, res, port)) return;
    void (async () => {
      const upstream = await fetch(`http://${registry.host}${req.url}`, {
        headers: { accept: req.headers.accept ?? "*/*" },
      });
      const body = rewrite(req.url ?? "", Buffer.from(await upstream.arrayBuffer()));
      res.statusCode = upstream.status;
      for (const header of ["content-type", "docker-content-digest"]) {
        const value = upstream.headers.get(header);
        if (value !== null) res.setHeader(header, value);
      }
      res.setHeader("content-length", body.length);
      res.end(body);
    })().catch(() => res.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return {
    host: `127.0.0.1:${port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

async function manifestOf(npk: string): Promise<string> {
  return (await inspectFull(npk)).manifest;
}

void describe("skiff pack --from-oci", () => {
  void it("packs from every source kind with the config mapped to the manifest", async () => {
    const cases: { source: string; args: string[]; npk: string }[] = [
      {
        source: `oci:${images.layout}:app`,
        args: ["--name", "bb", "--version", "1.0.0"],
        npk: "bb-1.0.0.npk",
      },
      { source: images.layout, args: ["--name", "bb", "--version", "1.0.1"], npk: "bb-1.0.1.npk" },
      {
        source: `oci-archive:${images.ociArchive}`,
        args: ["--name", "bb", "--version", "1.0.2"],
        npk: "bb-1.0.2.npk",
      },
      { source: `docker-archive:${images.dockerArchive}`, args: [], npk: "busybox-app-3.1.0.npk" },
      { source: `docker://${registry.host}/test/busybox-app:2.0`, args: [], npk: "busybox-app-2.0.0.npk" },
    ];
    for (const c of cases) {
      const r = await packFrom(c.source, c.args);
      assert.equal(r.code, 0, `${c.source}: ${r.stderr}`);
      assert.equal(r.stdout.trim(), join(r.out, c.npk));
      assert.match(r.stderr, /warning: WorkingDir \/data ignored/);
      assert.deepEqual(await readdir(r.tmp), [], `${c.source}: temporary directories removed`);
      const manifest = await manifestOf(join(r.out, c.npk));
      assert.match(manifest, /^init: \/bin\/sh$/m, c.source);
      assert.ok(manifest.includes(`uid: ${APP_UID}\n`) && manifest.includes(`gid: ${APP_GID}\n`), manifest);
      assert.ok(manifest.includes(`GREETING: ${GREETING}`), manifest);
      assert.ok(manifest.includes("PATH: /bin"), manifest);
      assert.ok((await inspectFull(join(r.out, c.npk))).signature !== undefined, "signed");
    }
  });

  void it("asks for a version when the tag is not one, and takes a manifest fragment", async () => {
    await assertRefused(
      await packFrom(`oci:${images.layout}:app`, ["--name", "bb"]),
      /"app" is not a version: pass --version/,
    );
    const fragment = join(work, "fragment.yaml");
    await writeFile(
      fragment,
      "version: 4.5.6\nenv:\n  EXTRA: yes\nmounts:\n  /tmp:\n    type: tmpfs\n    size: 1MiB\n",
    );
    const r = await packFrom(`oci:${images.layout}:app`, ["--name", "frag", "-m", fragment]);
    assert.equal(r.code, 0, r.stderr);
    const manifest = await manifestOf(join(r.out, "frag-4.5.6.npk"));
    assert.ok(manifest.includes("EXTRA: yes") && manifest.includes(`GREETING: ${GREETING}`), manifest);
    assert.match(manifest, /\/tmp:\n\s+type: tmpfs/);
    assert.match(manifest, /\/proc:\n\s+type: proc/);
  });

  void it("runs in skiffd with the image's entrypoint, env and user, and the whiteouts applied", async () => {
    const h = await ContainerHarness.create();
    try {
      const name = h.name("ociapp");
      const r = await packFrom(`docker://${registry.host}/test/busybox-app:2.0`, [
        "--name",
        name,
        "--version",
        "1.0.0",
      ]);
      assert.equal(r.code, 0, r.stderr);
      await cp(join(r.out, `${name}-1.0.0.npk`), join(h.dir, "repo", `${name}-1.0.0.npk`));
      await h.startDaemon(`repositories.default.key = "${keys.publicPath}"`);
      const container = `${name}:1.0.0`;
      await h.client.start(container);
      assert.deepEqual(await h.waitForExit(container), { type: "exit", code: 0, reason: "shutdown" });
      const lines = await h.logLines(container);
      for (const expected of [
        `uid=${APP_UID} gid=${APP_GID}`,
        `greeting=${GREETING}`,
        "data=new ",
        "rmme=gone",
      ]) {
        assert.ok(
          lines.some((l) => l.endsWith(expected)),
          `log line "${expected}" (the script: ${SCRIPT}) in:\n${lines.join("\n")}`,
        );
      }
    } finally {
      await h.close();
    }
  });

  void it("pulls with bearer token authentication from the WWW-Authenticate challenge", async () => {
    const scope = "repository:test/busybox-app:pull";
    const tokenRequests: string[] = [];
    const proxy = await registryProxy((req, res, port) => {
      const url = new URL(req.url ?? "/", "http://localhost");
      if (url.pathname === "/token") {
        tokenRequests.push(`${url.searchParams.get("service")} ${url.searchParams.get("scope")}`);
        res.setHeader("content-type", "application/json");
        res.end(JSON.stringify({ token: "t0ken" }));
        return true;
      }
      if (req.headers.authorization !== "Bearer t0ken") {
        res.statusCode = 401;
        res.setHeader(
          "www-authenticate",
          `Bearer realm="http://127.0.0.1:${port}/token",service="test-registry",scope="${scope}"`,
        );
        res.end();
        return true;
      }
      return false;
    });
    try {
      const r = await packFrom(`docker://${proxy.host}/test/busybox-app:2.0`);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(tokenRequests, [`test-registry ${scope}`]);
    } finally {
      await proxy.close();
    }
  });

  void it("refuses a blob a registry serves with other content", async () => {
    const proxy = await registryProxy(
      () => false,
      (path, body) => {
        if (!path.includes("/blobs/") || body.length < 100_000) return body;
        const tampered = Buffer.from(body);
        tampered[4] = tampered[4]! ^ 0xff; // gzip MTIME: the content still unpacks, the digest differs
        return tampered;
      },
    );
    try {
      await assertRefused(await packFrom(`docker://${proxy.host}/test/busybox-app:2.0`), /digest mismatch/);
    } finally {
      await proxy.close();
    }
  });

  void it("picks this machine's image from a multi-platform index, and refuses an index without one", async () => {
    const layers = [{ tar: await makeTar([{ name: "bin/", type: "directory" }]) }];
    const multi = join(work, "multi");
    await writeLayout(multi, layers, { tag: "1.0", architectures: [OTHER_ARCH, HOST_ARCH] });
    const r = await packFrom(`oci:${multi}:1.0`, ["--name", "multi"]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await readdir(r.out), ["multi-1.0.0.npk"]);
    const foreign = join(work, "multi-foreign");
    await writeLayout(foreign, layers, { tag: "1.0", architectures: [OTHER_ARCH, "s390x"] });
    await assertRefused(
      await packFrom(`oci:${foreign}:1.0`, ["--name", "multi"]),
      new RegExp(`no image for linux/${HOST_ARCH}; the index has linux/${OTHER_ARCH}, linux/s390x`),
    );
  });

  void it("refuses a layer whose blob does not match its digest", async () => {
    const copy = join(work, "tampered");
    await cp(images.layout, copy, { recursive: true });
    // The biggest blob is the busybox layer; its gzip MTIME bytes change the digest, not the content.
    const blobs = join(copy, "blobs", "sha256");
    let biggest = { name: "", size: -1 };
    for (const name of await readdir(blobs)) {
      const size = (await readFile(join(blobs, name))).length;
      if (size > biggest.size) biggest = { name, size };
    }
    const file = await open(join(blobs, biggest.name), "r+");
    await file.write(Buffer.from([0x01, 0x02, 0x03, 0x04]), 0, 4, 4);
    await file.close();
    await assertRefused(
      await packFrom(`oci:${copy}:app`, ["--name", "x", "--version", "1.0.0"]),
      /digest mismatch/,
    );
  });

  void it("refuses a corrupt layer", async () => {
    const dir = join(work, "corrupt");
    await writeLayout(dir, [{ tar: Buffer.from("tar"), blob: Buffer.from("this is not gzip data at all") }]);
    await assertRefused(await packFrom(`oci:${dir}`, ["--name", "x", "--version", "1.0.0"]), /corrupt layer/);
  });

  void it("refuses path traversal: .., absolute names, writes through a symlink, hard links out", async () => {
    const outside = await mkdtemp(join(tmpdir(), "skiff-oci-outside-"));
    try {
      const hostile: [string, Awaited<ReturnType<typeof makeTar>>, RegExp][] = [
        ["dotdot", await makeTar([{ name: "../../escape", content: "x" }]), /escapes the image root/],
        ["absolute", await makeTar([{ name: "/abs", content: "x" }]), /absolute entry name/],
        [
          "symlink",
          await makeTar([
            { name: "link", type: "symlink", linkname: outside },
            { name: "link/pwned", content: "x" },
          ]),
          /written through the symlink link/,
        ],
        [
          "hardlink",
          await makeTar([{ name: "hl", type: "link", linkname: "../../etc/passwd" }]),
          /escapes the image root/,
        ],
      ];
      for (const [name, layer, reason] of hostile) {
        const dir = join(work, `hostile-${name}`);
        await writeLayout(dir, [{ tar: layer }]);
        await assertRefused(await packFrom(`oci:${dir}`, ["--name", "x", "--version", "1.0.0"]), reason);
      }
      assert.deepEqual(await readdir(outside), [], "nothing written outside the image root");
    } finally {
      await rm(outside, { recursive: true, force: true });
    }
  });

  void it("refuses an image for another architecture", async () => {
    const copy = join(work, "foreign");
    await cp(images.layout, copy, { recursive: true });
    await run("umoci", ["config", "--image", `${copy}:app`, "--architecture", OTHER_ARCH], {
      timeout: 60_000,
    });
    await assertRefused(
      await packFrom(`oci:${copy}:app`, ["--name", "x", "--version", "1.0.0"]),
      new RegExp(`the image is for linux/${OTHER_ARCH}, not linux/${HOST_ARCH}`),
    );
  });

  void it("refuses a too-large image: by its blob sizes before reading, and by what it unpacks to", async () => {
    await assertRefused(
      await packFrom(`oci:${images.layout}:app`, [
        "--name",
        "x",
        "--version",
        "1.0.0",
        "--max-image-size",
        "64KiB",
      ]),
      /more than --max-image-size 65536; refused before reading its layers/,
    );
    const bomb = join(work, "bomb");
    await writeLayout(bomb, [
      { tar: await makeTar([{ name: "zeros", content: Buffer.alloc(4 * 1024 * 1024) }]) },
    ]);
    await assertRefused(
      await packFrom(`oci:${bomb}`, ["--name", "x", "--version", "1.0.0", "--max-image-size", "1MiB"]),
      /unpacks to more than 1048576 bytes/,
    );
  });

  void it("refuses an image that runs as root unless --user names another user", async () => {
    const dir = join(work, "rootimage");
    await writeLayout(dir, [{ tar: await makeTar([{ name: "bin/", type: "directory" }]) }], {
      config: { Entrypoint: ["/bin/true"] },
    });
    await assertRefused(
      await packFrom(`oci:${dir}`, ["--name", "x", "--version", "1.0.0"]),
      /the image runs as root/,
    );
    const r = await packFrom(`oci:${dir}`, ["--name", "x", "--version", "1.0.0", "--user", "1000:1000"]);
    assert.equal(r.code, 0, r.stderr);
  });
});
