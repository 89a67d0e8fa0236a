// Shared fixtures for NPK and mount integration tests: a scratch directory with a tiny root
// file system, manifests and a key pair. Everything lives under one mkdtemp directory that
// `cleanup` removes.
import { readdir, readFile } from "node:fs/promises";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { genKey } from "../../../src/npk/signature.js";

export interface Fixture {
  dir: string;
  root: string;
  manifest: string;
  resourceManifest: string;
  secretKey: string;
  publicKey: string;
  cleanup(): Promise<void>;
}

export const HELLO_MANIFEST = `name: hello
version: 0.0.2
init: /bin/hello
args: ["one"]
uid: 1000
gid: 1000
mounts:
  /proc:
    type: proc
  /lib:
    type: bind
    host: /lib
  /data:
    type: persist
  /srv/www:
    type: bind
    host: /srv
    options: rw
`;

export const RESOURCE_MANIFEST = `name: res
version: 1.2.3
uid: 1000
gid: 1000
`;

export async function createFixture(prefix: string): Promise<Fixture> {
  const dir = await mkdtemp(join(tmpdir(), `skiff-${prefix}-`));
  const root = join(dir, "root");
  await mkdir(join(root, "bin"), { recursive: true });
  await writeFile(join(root, "bin", "hello"), "#!/bin/sh\necho hello\n", { mode: 0o755 });
  await writeFile(join(root, "greeting.txt"), "Hello from the image\n");
  const manifest = join(dir, "manifest.yaml");
  await writeFile(manifest, HELLO_MANIFEST);
  const resourceManifest = join(dir, "resource.yaml");
  await writeFile(resourceManifest, RESOURCE_MANIFEST);
  const { secretPath, publicPath } = await genKey(dir, "test");
  return {
    dir,
    root,
    manifest,
    resourceManifest,
    secretKey: secretPath,
    publicKey: publicPath,
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

/** Loop devices currently backed by `file`. */
export async function loopDevicesFor(file: string): Promise<string[]> {
  const devices: string[] = [];
  for (const name of await readdir("/sys/block")) {
    if (!name.startsWith("loop")) continue;
    const backing = await readFile(`/sys/block/${name}/loop/backing_file`, "utf8").catch(() => "");
    if (backing.trim() === file) devices.push(`/dev/${name}`);
  }
  return devices;
}
