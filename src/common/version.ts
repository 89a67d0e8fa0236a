/**
 * Skiff's own release version, read once from the package's package.json (the one source of the
 * number: npm, the CLI and the daemon all report the same). The console protocol version is a
 * different thing (src/protocol/version.ts): Skiff speaks Northstar's 0.9 console.
 */
import { readFileSync } from "node:fs";

function readPackageVersion(): string {
  // This module runs as dist/src/common/version.js, three levels below the package root.
  const text = readFileSync(new URL("../../../package.json", import.meta.url), "utf8");
  const version = (JSON.parse(text) as { version?: unknown }).version;
  return typeof version === "string" ? version : "unknown";
}

export const SKIFF_VERSION = readPackageVersion();
