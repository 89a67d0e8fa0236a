import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { OciImageError } from "../../../src/oci-image/errors.js";
import { parseWwwAuthenticate } from "../../../src/oci-image/www-authenticate.js";

void describe("parseWwwAuthenticate", () => {
  void it("parses Docker Hub's bearer challenge", () => {
    assert.deepEqual(
      parseWwwAuthenticate(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"',
      ),
      [
        {
          scheme: "bearer",
          params: {
            realm: "https://auth.docker.io/token",
            service: "registry.docker.io",
            scope: "repository:library/busybox:pull",
          },
        },
      ],
    );
  });

  void it("reads several challenges, token values, spaces and escapes", () => {
    assert.deepEqual(
      parseWwwAuthenticate(
        'Basic realm="a \\"b\\"", charset=UTF-8, Bearer  realm = "https://x/t" , error=invalid_token',
      ),
      [
        { scheme: "basic", params: { realm: 'a "b"', charset: "UTF-8" } },
        { scheme: "bearer", params: { realm: "https://x/t", error: "invalid_token" } },
      ],
    );
    assert.deepEqual(parseWwwAuthenticate("Negotiate, Basic"), [
      { scheme: "negotiate", params: {} },
      { scheme: "basic", params: {} },
    ]);
    assert.deepEqual(parseWwwAuthenticate(""), []);
  });

  void it("lowercases scheme and parameter names", () => {
    assert.deepEqual(parseWwwAuthenticate('BEARER Realm="r"'), [
      { scheme: "bearer", params: { realm: "r" } },
    ]);
  });

  void it("refuses malformed and oversized headers", () => {
    for (const bad of ['Bearer realm="unterminated', "Bearer realm=", "=x", "x".repeat(9000)]) {
      assert.throws(() => parseWwwAuthenticate(bad), OciImageError, bad.slice(0, 40));
    }
    const many = "Bearer " + Array.from({ length: 40 }, (_, i) => `p${i}=v`).join(",");
    assert.throws(() => parseWwwAuthenticate(many), /too many parameters/);
  });
});
