import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export type NativeBinaryName =
  | "skiff-monitor"
  | "skiff-init"
  | "skiff-mksock"
  | "skiff-notify"
  | "skiff-exec"
  | "skiff-nsconnect"
  | "skiff-launcher"
  | "skiff-mount";

let packageRoot: string | undefined;

// Walks up from this module (src/ or dist/src/) to the package.json of Skiff,
// so the lookup works from both the TypeScript sources and the build output.
function findPackageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(dir, "package.json");
    if (existsSync(manifest)) {
      const name = (JSON.parse(readFileSync(manifest, "utf8")) as { name?: unknown }).name;
      if (name === "skiff") return dir;
    }
    const parent = dirname(dir);
    if (parent === dir)
      throw new Error("cannot find Skiff's package.json above " + fileURLToPath(import.meta.url));
    dir = parent;
  }
}

/** Absolute path of a binary built by `make -C native` (`<package root>/native/build/<name>`). */
export function nativeBinary(name: NativeBinaryName): string {
  packageRoot ??= findPackageRoot();
  return join(packageRoot, "native", "build", name);
}
