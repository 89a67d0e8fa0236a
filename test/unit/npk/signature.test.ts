import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { NpkError } from "../../../src/npk/errors.js";
import {
  decodeSignature,
  encodeHashes,
  genKey,
  generateRawKeyPair,
  privateKeyFromRaw,
  publicKeyFromRaw,
  readPrivateKey,
  readPublicKey,
  signHashes,
  verifySignature,
} from "../../../src/npk/signature.js";

const run = promisify(execFile);

const hashes = {
  metaHash: "a".repeat(64),
  manifestHash: "b".repeat(64),
  verityHash: "c".repeat(64),
  verityOffset: 8192,
};

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "skiff-sig-test-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

void describe("signature.yaml", () => {
  void it("decodes the written form and the same document in another YAML form alike", () => {
    const { secret } = generateRawKeyPair();
    const written = signHashes(hashes, privateKeyFromRaw(secret));
    const fast = decodeSignature(written); // the exact form: no YAML parser
    const [signedText, signatureDoc] = written.split("---") as [string, string];
    // Quoted values and a comment: the same document for YAML, read by the parser.
    const quoted =
      signedText.replace(/hash: ([0-9a-f]{64})/g, 'hash: "$1"') + "---" + signatureDoc + "\n# end\n";
    const general = decodeSignature(quoted);
    assert.deepEqual(fast.hashes, hashes);
    assert.deepEqual(general.hashes, fast.hashes);
    assert.ok(general.signature.equals(fast.signature));
    // Northstar may end the file with a newline.
    assert.deepEqual(decodeSignature(`${written}\n`).hashes, hashes);
  });

  void it("loads no YAML parser for the forms Skiff and Northstar write", async () => {
    const signature = new URL("../../../src/npk/signature.js", import.meta.url).href;
    const meta = new URL("../../../src/npk/meta.js", import.meta.url).href;
    const script = `
      const s = await import(${JSON.stringify(signature)});
      const m = await import(${JSON.stringify(meta)});
      const { secret } = s.generateRawKeyPair();
      s.decodeSignature(s.signHashes(${JSON.stringify(hashes)}, s.privateKeyFromRaw(secret)));
      m.parseMeta(m.encodeMeta());
      const { createRequire } = await import("node:module");
      const cache = createRequire(import.meta.url).cache;
      console.log(Object.keys(cache).some((k) => k.includes("/node_modules/yaml/")));`;
    const { stdout } = await run(process.execPath, ["--input-type=module", "-e", script]);
    assert.equal(stdout.trim(), "false");
  });

  void it("formats the hashes document like Northstar", () => {
    assert.equal(
      encodeHashes(hashes),
      `meta:\n  hash: ${"a".repeat(64)}\nmanifest.yaml:\n  hash: ${"b".repeat(64)}\n` +
        `fs.img:\n  verity-hash: ${"c".repeat(64)}\n  verity-offset: 8192\n`,
    );
  });

  void it("signs, decodes and verifies", () => {
    const pair = generateRawKeyPair();
    const text = signHashes(hashes, privateKeyFromRaw(pair.secret));
    assert.match(text, /\n---\nsignature: [A-Za-z0-9+/]+=*$/);
    const decoded = decodeSignature(text);
    assert.deepEqual(decoded.hashes, hashes);
    assert.equal(decoded.signedText, encodeHashes(hashes));
    verifySignature(decoded, pair.public);
    verifySignature(decoded, publicKeyFromRaw(pair.public));
  });

  void it("rejects the wrong key", () => {
    const signer = generateRawKeyPair();
    const other = generateRawKeyPair();
    const decoded = decodeSignature(signHashes(hashes, privateKeyFromRaw(signer.secret)));
    assert.throws(() => verifySignature(decoded, other.public), /invalid signature/);
  });

  void it("rejects a modified hashes document", () => {
    const pair = generateRawKeyPair();
    const text = signHashes(hashes, privateKeyFromRaw(pair.secret)).replace(
      "verity-offset: 8192",
      "verity-offset: 4096",
    );
    assert.throws(() => verifySignature(decodeSignature(text), pair.public), /invalid signature/);
  });

  void it("rejects malformed documents with the field path", () => {
    assert.throws(() => decodeSignature("meta: {}\n"), /missing '---'/);
    const bad = signHashes(hashes, privateKeyFromRaw(generateRawKeyPair().secret)).replace(
      "b".repeat(64),
      "xyz",
    );
    assert.throws(() => decodeSignature(bad), /manifest\.yaml\.hash/);
    assert.throws(() => decodeSignature(`${encodeHashes(hashes)}---\nsignature: AAAA`), /has 3 bytes/);
  });
});

void describe("keys", () => {
  void it("writes raw 32-byte key files and reads them back", async () => {
    const { secretPath, publicPath } = await genKey(dir, "test");
    assert.equal((await readFile(secretPath)).length, 32);
    assert.equal((await readFile(publicPath)).length, 32);
    assert.equal((await stat(secretPath)).mode & 0o777, 0o600);
    const decoded = decodeSignature(signHashes(hashes, await readPrivateKey(secretPath)));
    verifySignature(decoded, await readPublicKey(publicPath));
  });

  void it("refuses to overwrite an existing key", async () => {
    await assert.rejects(genKey(dir, "test"), (e: unknown) => e instanceof NpkError && e.kind === "key");
  });

  void it("rejects a public key of the wrong size", () => {
    assert.throws(() => publicKeyFromRaw(Buffer.alloc(31)), /32 raw bytes, got 31/);
  });
});
