/**
 * The CRI tests' image: a full static busybox (the host's /bin/busybox) with the applets a test
 * runs, built as an OCI layout and pushed by skopeo to a local docker-registry.
 */
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { makeTar, writeLayout, type Registry } from "../oci-image/fixtures.js";

const run = promisify(execFile);
const PUSH_TIMEOUT_MS = 60_000;

export interface BusyboxImage {
  /** Repository and tag in the registry, e.g. `e2e/box:1`. */
  name: string;
  applets: readonly string[];
  /** /etc/passwd and /etc/group; default: root only. */
  passwd?: string;
  group?: string;
  /** The image config's Entrypoint, Cmd, Env, WorkingDir; default: `PATH=/bin` only. */
  config?: Record<string, unknown>;
}

/** Builds the image's OCI layout under `dir`, pushes it and answers its reference. */
export async function pushBusyboxImage(
  dir: string,
  registry: Registry,
  image: BusyboxImage,
): Promise<string> {
  const busybox = await readFile("/bin/busybox");
  const layer = await makeTar([
    { name: "bin", type: "directory" },
    { name: "bin/busybox", content: busybox, mode: 0o755 },
    ...image.applets.map((a) => ({ name: `bin/${a}`, type: "symlink" as const, linkname: "busybox" })),
    { name: "etc", type: "directory" },
    { name: "etc/passwd", content: image.passwd ?? "root:x:0:0::/:/bin/sh\n" },
    { name: "etc/group", content: image.group ?? "root:x:0:\n" },
    { name: "tmp", type: "directory", mode: 0o1777 },
  ]);
  const [repository, tag] = image.name.split(":") as [string, string];
  const layout = join(dir, `${repository.replaceAll("/", "-")}-layout`);
  await writeLayout(layout, [{ tar: layer }], { tag, config: image.config ?? { Env: ["PATH=/bin"] } });
  const reference = `${registry.host}/${image.name}`;
  await run(
    "skopeo",
    ["copy", "-q", "--dest-tls-verify=false", `oci:${layout}:${tag}`, `docker://${reference}`],
    {
      timeout: PUSH_TIMEOUT_MS,
    },
  );
  return reference;
}
