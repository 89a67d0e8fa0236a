import { parseManifest } from "../../../src/npk/manifest/index.js";
import type { OciSpecInput } from "../../../src/daemon/oci/spec.js";

export const BASE = "name: hello\nversion: 0.0.1\ninit: /binary\nuid: 1000\ngid: 1001\n";

/** A spec input for the manifest `yaml`, with host facts a test may override. */
export function inputFor(yaml: string, extra: Partial<OciSpecInput> = {}): OciSpecInput {
  return {
    manifest: parseManifest(yaml),
    containerId: "hello:0.0.1",
    rootfsPath: "/run/skiff/containers/hello:0.0.1",
    dataDir: "/data/skiff",
    cgroupsPath: "/skiff/hello",
    initHostPath: "/usr/lib/skiff/skiff-init",
    arch: "x64",
    ...extra,
  };
}
