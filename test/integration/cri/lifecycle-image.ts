/**
 * The lifecycle tests' image: a full static busybox (the host's /bin/busybox) with the applets
 * the tests run, pushed by skopeo to a local docker-registry as `e2e/box:1`.
 */
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { makeTar, writeLayout, type Registry } from "../oci-image/fixtures.js";

const run = promisify(execFile);
const PUSH_TIMEOUT_MS = 60_000;

const APPLETS = ["sh", "echo", "sleep", "cat", "mkdir", "hostname", "httpd", "wget", "touch", "ls", "nc"];

/** Builds the image's OCI layout under `dir`, pushes it and answers its reference. */
export async function pushBusyboxImage(dir: string, registry: Registry): Promise<string> {
  const busybox = await readFile("/bin/busybox");
  const layer = await makeTar([
    { name: "bin", type: "directory" },
    { name: "bin/busybox", content: busybox, mode: 0o755 },
    ...APPLETS.map((a) => ({ name: `bin/${a}`, type: "symlink" as const, linkname: "busybox" })),
    { name: "etc", type: "directory" },
    { name: "etc/passwd", content: "root:x:0:0::/:/bin/sh\n" },
    { name: "etc/group", content: "root:x:0:\n" },
    { name: "tmp", type: "directory", mode: 0o1777 },
  ]);
  const layout = join(dir, "box-layout");
  await writeLayout(layout, [{ tar: layer }], { tag: "1", config: { Env: ["PATH=/bin"] } });
  const reference = `${registry.host}/e2e/box:1`;
  await run("skopeo", ["copy", "-q", "--dest-tls-verify=false", `oci:${layout}:1`, `docker://${reference}`], {
    timeout: PUSH_TIMEOUT_MS,
  });
  return reference;
}
