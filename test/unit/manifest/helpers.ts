import assert from "node:assert/strict";
import { ManifestError, parseManifest, type ManifestFormat } from "../../../src/npk/manifest/index.js";

/** The smallest valid application manifest, in YAML; tests append fields to it. */
export const BASE = "name: hello\nversion: 0.0.1\ninit: /binary\nuid: 1000\ngid: 1001\n";

/** Asserts that parsing fails with an error at `path` whose reason matches `reason`. */
export function assertRejected(text: string, path: string, reason?: RegExp, format?: ManifestFormat): void {
  assert.throws(
    () => parseManifest(text, format),
    (error: unknown) => {
      assert.ok(error instanceof ManifestError, `expected ManifestError, got ${String(error)}`);
      const hit = error.errors.find(
        (e) => e.path === path && (reason === undefined || reason.test(e.reason)),
      );
      assert.ok(hit, `no error at ${path} matching ${String(reason)}; got ${JSON.stringify(error.errors)}`);
      return true;
    },
  );
}
