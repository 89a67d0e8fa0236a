/**
 * Images for the `pack --from-oci` tests, built locally without network: a busybox root made into
 * an OCI layout by umoci (a base layer, then a second layer with a whiteout and an opaque
 * directory added verbatim by `umoci raw add-layer`), copied by skopeo into an oci-archive, a
 * docker-archive and a docker-registry on 127.0.0.1. Hostile images (traversal, corrupt and
 * oversized layers) are written as OCI layouts directly by `writeLayout`.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFile, mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { gzipSync } from "node:zlib";
import * as tar from "tar-stream";

const run = promisify(execFile);
const TOOL_TIMEOUT_MS = 60_000;

export const APP_UID = 1234;
export const APP_GID = 2345;
export const GREETING = "hello from an OCI image";
/** What the image's command prints; the test compares it with the container's log. */
export const SCRIPT = [
  'echo "uid=$(id -u) gid=$(id -g)"',
  'echo "greeting=$GREETING"',
  'echo "data=$(ls /data | tr "\\n" " ")"',
  "test -e /etc/rmme && echo rmme=present || echo rmme=gone",
].join("; ");

const APPLETS = ["sh", "echo", "id", "ls", "tr", "test", "cat", "env"];

async function tool(cmd: string, args: string[]): Promise<string> {
  const { stdout } = await run(cmd, args, { timeout: TOOL_TIMEOUT_MS });
  return stdout;
}

export interface TarMember {
  name: string;
  type?: "file" | "directory" | "symlink" | "link";
  content?: string | Buffer;
  linkname?: string;
  mode?: number;
}

/** An uncompressed tar of `members`, written in order (hostile names included). */
export async function makeTar(members: TarMember[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const chunk of pack) chunks.push(chunk as Buffer);
  })();
  for (const m of members) {
    const type = m.type ?? "file";
    // A file entry without a buffer waits for its data to be written: give files an empty one.
    const content =
      m.content !== undefined ? Buffer.from(m.content) : type === "file" ? Buffer.alloc(0) : undefined;
    await new Promise<void>((resolve, reject) => {
      const header = {
        name: m.name,
        type,
        mode: m.mode ?? (type === "directory" ? 0o755 : 0o644),
        ...(m.linkname === undefined ? {} : { linkname: m.linkname }),
        ...(content === undefined ? {} : { size: content.length }),
      };
      if (content === undefined) pack.entry(header, (e) => (e ? reject(e) : resolve()));
      else pack.entry(header, content, (e) => (e ? reject(e) : resolve()));
    });
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

function sha256(data: Buffer | string): string {
  return createHash("sha256").update(data).digest("hex");
}

export interface LayoutLayer {
  /** The uncompressed tar. */
  tar: Buffer;
  /** The blob as stored; default gzip of `tar`. */
  blob?: Buffer;
}

/** The GOARCH name of this machine. */
export const HOST_ARCH = process.arch === "x64" ? "amd64" : process.arch;

/**
 * Writes an OCI layout holding one image tagged `tag`. With `architectures`, the tag names an
 * image index with one manifest per architecture (same layers, each its own config); otherwise
 * a single manifest for `architecture` (default this machine's).
 */
export async function writeLayout(
  dir: string,
  layers: LayoutLayer[],
  opts: {
    tag?: string;
    architecture?: string;
    architectures?: string[];
    config?: Record<string, unknown>;
  } = {},
): Promise<void> {
  await mkdir(join(dir, "blobs", "sha256"), { recursive: true });
  const put = async (data: Buffer | string) => {
    const hex = sha256(data);
    await writeFile(join(dir, "blobs", "sha256", hex), data);
    return { digest: `sha256:${hex}`, size: Buffer.byteLength(data) };
  };
  const layerDescriptors: { mediaType: string; digest: string; size: number }[] = [];
  for (const layer of layers) {
    const blob = layer.blob ?? gzipSync(layer.tar);
    layerDescriptors.push({ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", ...(await put(blob)) });
  }
  const putManifest = async (architecture: string) => {
    const config = JSON.stringify({
      architecture,
      os: "linux",
      config: opts.config ?? { Entrypoint: ["/bin/sh"], User: "1000:1000" },
      rootfs: { type: "layers", diff_ids: layers.map((l) => `sha256:${sha256(l.tar)}`) },
    });
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: "application/vnd.oci.image.config.v1+json", ...(await put(config)) },
      layers: layerDescriptors,
    });
    return { mediaType: "application/vnd.oci.image.manifest.v1+json", ...(await put(manifest)) };
  };
  let top;
  if (opts.architectures === undefined) {
    top = await putManifest(opts.architecture ?? HOST_ARCH);
  } else {
    const manifests = [];
    for (const architecture of opts.architectures) {
      manifests.push({ ...(await putManifest(architecture)), platform: { os: "linux", architecture } });
    }
    const imageIndex = JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.index.v1+json",
      manifests,
    });
    top = { mediaType: "application/vnd.oci.image.index.v1+json", ...(await put(imageIndex)) };
  }
  const index = {
    schemaVersion: 2,
    manifests: [{ ...top, annotations: { "org.opencontainers.image.ref.name": opts.tag ?? "latest" } }],
  };
  await writeFile(join(dir, "index.json"), JSON.stringify(index));
  await writeFile(join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
}

export interface Images {
  dir: string;
  /** OCI layout with the single tag `app` (umoci). */
  layout: string;
  ociArchive: string;
  dockerArchive: string;
  cleanup(): Promise<void>;
}

/** Builds the busybox image with umoci and copies it with skopeo; see the file comment. */
export async function buildImages(): Promise<Images> {
  const dir = await mkdtemp(join(tmpdir(), "skiff-oci-fixture-"));
  const layout = join(dir, "layout");
  const bundle = join(dir, "bundle");
  await tool("umoci", ["init", "--layout", layout]);
  await tool("umoci", ["new", "--image", `${layout}:app`]);
  await tool("umoci", ["unpack", "--image", `${layout}:app`, bundle]);
  const rootfs = join(bundle, "rootfs");
  for (const d of ["bin", "etc", "data/lower-dir"]) await mkdir(join(rootfs, d), { recursive: true });
  await copyFile("/bin/busybox", join(rootfs, "bin", "busybox"));
  for (const applet of APPLETS) await symlink("busybox", join(rootfs, "bin", applet));
  await writeFile(
    join(rootfs, "etc", "passwd"),
    `root:x:0:0:root:/root:/bin/sh\napp:x:${APP_UID}:${APP_GID}::/:/bin/sh\n`,
  );
  await writeFile(join(rootfs, "etc", "group"), `root:x:0:\napp:x:${APP_GID}:\n`);
  await writeFile(join(rootfs, "etc", "rmme"), "removed by a whiteout in layer 2\n");
  await writeFile(join(rootfs, "data", "old"), "hidden by an opaque directory in layer 2\n");
  await writeFile(join(rootfs, "data", "lower-dir", "deep"), "hidden too\n");
  await tool("umoci", ["repack", "--image", `${layout}:app`, bundle]);
  // Layer 2, verbatim: a whiteout for /etc/rmme, /data made opaque, and a new file in it.
  const layer2 = await makeTar([
    { name: "etc/", type: "directory" },
    { name: "etc/.wh.rmme" },
    { name: "data/", type: "directory" },
    { name: "data/.wh..wh..opq" },
    { name: "data/new", content: "fresh\n" },
  ]);
  await writeFile(join(dir, "layer2.tar"), layer2);
  await tool("umoci", ["raw", "add-layer", "--image", `${layout}:app`, join(dir, "layer2.tar")]);
  await tool("umoci", [
    "config",
    "--image",
    `${layout}:app`,
    "--config.entrypoint",
    "/bin/sh",
    "--config.cmd",
    "-c",
    "--config.cmd",
    SCRIPT,
    "--config.env",
    `GREETING=${GREETING}`,
    "--config.env",
    "PATH=/bin",
    "--config.user",
    "app",
    "--config.workingdir",
    "/data",
  ]);
  await rm(bundle, { recursive: true, force: true });
  const ociArchive = join(dir, "app-oci.tar");
  const dockerArchive = join(dir, "app-docker.tar");
  await tool("skopeo", ["copy", "-q", `oci:${layout}:app`, `oci-archive:${ociArchive}:app`]);
  await tool("skopeo", [
    "copy",
    "-q",
    `oci:${layout}:app`,
    `docker-archive:${dockerArchive}:busybox-app:3.1`,
  ]);
  return { dir, layout, ociArchive, dockerArchive, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** A free TCP port on 127.0.0.1 (asked of the kernel, then released for the registry). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

export interface Registry {
  host: string;
  stop(): Promise<void>;
}

/** Starts Debian's docker-registry on 127.0.0.1 with its own storage and config; stop() ends it by pid. */
export async function startRegistry(dir: string): Promise<Registry> {
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const config = join(dir, "registry.yml");
  await mkdir(join(dir, "registry-storage"));
  await writeFile(
    config,
    `version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: ${join(dir, "registry-storage")}\nhttp:\n  addr: ${host}\n  secret: skiff-test\n`,
  );
  const child: ChildProcess = spawn("docker-registry", ["serve", config], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let log = "";
  child.stderr?.on("data", (d: Buffer) => (log += d.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      await exited;
    }
  };
  const deadline = Date.now() + 20_000;
  for (;;) {
    const up = await fetch(`http://${host}/v2/`).then(
      (r) => r.ok,
      () => false,
    );
    if (up) break;
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`docker-registry did not come up on ${host}:\n${log}`);
    }
    await sleep(50);
  }
  return { host, stop };
}

/** Pushes the fixture image to the registry as `NAME:TAG`. */
export async function push(images: Images, registry: Registry, nameTag: string): Promise<void> {
  await tool("skopeo", [
    "copy",
    "-q",
    "--dest-tls-verify=false",
    `oci:${images.layout}:app`,
    `docker://${registry.host}/${nameTag}`,
  ]);
}
