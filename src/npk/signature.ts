// Ed25519 keys and signature.yaml. Keys are raw 32-byte files like Northstar's gen-key
// (`NAME.key` secret seed, `NAME.pub` public key). signature.yaml is the hashes document,
// then `---`, then `signature: <base64>` where the signature covers exactly the bytes before
// the first `---`. Northstar formats the hashes document by hand, so we do too (byte-exact).
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify } from "node:crypto";
import type { KeyObject } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { NpkError, asNpkError } from "./errors.js";
import { yamlNestingBound } from "./manifest/parse.js";
import { yamlLib } from "./yaml-lib.js";

export const ED25519_KEY_SIZE = 32;
export const ED25519_SIGNATURE_SIZE = 64;
// DER prefixes that wrap a raw Ed25519 seed (PKCS#8) or public key (SPKI) for node:crypto.
const PKCS8_ED25519_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");
const SPKI_ED25519_PREFIX = Buffer.from("302a300506032b6570032100", "hex");

export interface NpkHashes {
  /** sha256 of the ZIP comment, hex. */
  metaHash: string;
  /** sha256 of manifest.yaml, hex. */
  manifestHash: string;
  /** dm-verity root hash of fs.img, hex. */
  verityHash: string;
  /** Offset of the verity superblock inside fs.img (= size of the file system data). */
  verityOffset: number;
}

export interface DecodedSignature {
  hashes: NpkHashes;
  /** The exact signed bytes (the first YAML document). */
  signedText: string;
  signature: Buffer;
}

function checkRawKey(raw: Buffer, what: string): void {
  if (raw.length !== ED25519_KEY_SIZE) {
    throw new NpkError("key", `${what} must be ${ED25519_KEY_SIZE} raw bytes, got ${raw.length}`);
  }
}

export function privateKeyFromRaw(raw: Buffer): KeyObject {
  checkRawKey(raw, "Ed25519 secret key");
  return createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, raw]), format: "der", type: "pkcs8" });
}

export function publicKeyFromRaw(raw: Buffer): KeyObject {
  checkRawKey(raw, "Ed25519 public key");
  return createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, raw]), format: "der", type: "spki" });
}

/** Accepts a KeyObject or a raw 32-byte public key. */
export function toPublicKey(key: KeyObject | Buffer): KeyObject {
  return Buffer.isBuffer(key) ? publicKeyFromRaw(key) : key;
}

export async function readPrivateKey(path: string): Promise<KeyObject> {
  const raw = await readFile(path).catch((e: unknown) => {
    throw asNpkError("key", `cannot read secret key ${path}`, e);
  });
  // Northstar reads the first 32 bytes of the key file; a shorter file is an error.
  if (raw.length < ED25519_KEY_SIZE) throw new NpkError("key", `secret key ${path} is shorter than 32 bytes`);
  return privateKeyFromRaw(raw.subarray(0, ED25519_KEY_SIZE));
}

export async function readPublicKey(path: string): Promise<KeyObject> {
  const raw = await readFile(path).catch((e: unknown) => {
    throw asNpkError("key", `cannot read public key ${path}`, e);
  });
  try {
    return publicKeyFromRaw(raw);
  } catch (e) {
    throw asNpkError("key", `public key ${path}`, e);
  }
}

/** Generates a key pair as raw bytes. */
export function generateRawKeyPair(): { secret: Buffer; public: Buffer } {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  const jwk = privateKey.export({ format: "jwk" });
  const pub = publicKey.export({ format: "jwk" });
  return { secret: Buffer.from(jwk.d ?? "", "base64url"), public: Buffer.from(pub.x ?? "", "base64url") };
}

/** Writes DIR/NAME.key (mode 0600) and DIR/NAME.pub; refuses to overwrite existing files. */
export async function genKey(dir: string, name: string): Promise<{ secretPath: string; publicPath: string }> {
  if (name.length === 0 || name.includes("/"))
    throw new NpkError("usage", `invalid key name ${JSON.stringify(name)}`);
  const pair = generateRawKeyPair();
  const secretPath = join(dir, `${name}.key`);
  const publicPath = join(dir, `${name}.pub`);
  try {
    await writeFile(publicPath, pair.public, { flag: "wx", mode: 0o644 });
    await writeFile(secretPath, pair.secret, { flag: "wx", mode: 0o600 });
  } catch (e) {
    throw asNpkError("key", "cannot write key pair", e);
  }
  return { secretPath, publicPath };
}

/** The hashes document exactly as Northstar writes it. */
export function encodeHashes(h: NpkHashes): string {
  return (
    `meta:\n  hash: ${h.metaHash}\n` +
    `manifest.yaml:\n  hash: ${h.manifestHash}\n` +
    `fs.img:\n  verity-hash: ${h.verityHash}\n  verity-offset: ${h.verityOffset}\n`
  );
}

export function signHashes(h: NpkHashes, key: KeyObject): string {
  const signedText = encodeHashes(h);
  const signature = sign(null, Buffer.from(signedText, "utf8"), key);
  return `${signedText}---\nsignature: ${signature.toString("base64")}`;
}

const HEX_SHA256 = /^[0-9a-f]{64}$/;

function field(doc: unknown, path: string[]): unknown {
  let value: unknown = doc;
  for (const key of path) {
    value = typeof value === "object" && value !== null ? (value as Record<string, unknown>)[key] : undefined;
  }
  return value;
}

function hexField(doc: unknown, path: string[]): string {
  const value = field(doc, path);
  if (typeof value !== "string" || !HEX_SHA256.test(value)) {
    throw new NpkError("signature", `signature.yaml: ${path.join(".")} must be a lowercase hex sha256`);
  }
  return value;
}

/** Both documents of signature.yaml are two levels deep; the YAML parser recurses per level. */
const MAX_SIGNATURE_NESTING = 4;

/**
 * signature.yaml exactly as encodeHashes and signHashes write it (Northstar's form): read without
 * the YAML parser, since the start-up scan reads one per installed package. Any other form (other
 * spacing, quotes, order, comments) goes to the YAML parser and its checks.
 */
const EXACT_HASHES = new RegExp(
  "^meta:\n  hash: ([0-9a-f]{64})\nmanifest\\.yaml:\n  hash: ([0-9a-f]{64})\n" +
    "fs\\.img:\n  verity-hash: ([0-9a-f]{64})\n  verity-offset: (0|[1-9][0-9]{0,14})\n$",
);
const EXACT_SIGNATURE = /^\nsignature: ([A-Za-z0-9+/]+={0,2})\n?$/;

function decodeExact(signedText: string, signatureText: string): DecodedSignature | undefined {
  const hashes = EXACT_HASHES.exec(signedText);
  const encoded = EXACT_SIGNATURE.exec(signatureText)?.[1];
  if (hashes === null || encoded === undefined) return undefined;
  const signature = Buffer.from(encoded, "base64");
  if (signature.length !== ED25519_SIGNATURE_SIZE) return undefined; // the general path names it
  return {
    hashes: {
      metaHash: hashes[1]!,
      manifestHash: hashes[2]!,
      verityHash: hashes[3]!,
      verityOffset: Number(hashes[4]),
    },
    signedText,
    signature,
  };
}

/** Parses signature.yaml without checking the signature. The caller bounds its size (MAX_SIGNATURE_SIZE). */
export function decodeSignature(text: string): DecodedSignature {
  const split = text.indexOf("---");
  if (split >= 0) {
    const exact = decodeExact(text.slice(0, split), text.slice(split + 3));
    if (exact !== undefined) return exact;
  }
  if (yamlNestingBound(text) > MAX_SIGNATURE_NESTING) {
    throw new NpkError("signature", `signature.yaml is nested deeper than ${MAX_SIGNATURE_NESTING} levels`);
  }
  if (split < 0)
    throw new NpkError("signature", "signature.yaml: missing '---' between hashes and signature");
  const signedText = text.slice(0, split);
  let hashesDoc: unknown;
  let signatureDoc: unknown;
  try {
    const { parse } = yamlLib();
    hashesDoc = parse(signedText, { maxAliasCount: 0 });
    signatureDoc = parse(text.slice(split + 3), { maxAliasCount: 0 });
  } catch (e) {
    throw asNpkError("signature", "signature.yaml is not valid YAML", e);
  }
  const verityOffset = field(hashesDoc, ["fs.img", "verity-offset"]);
  if (typeof verityOffset !== "number" || !Number.isSafeInteger(verityOffset) || verityOffset < 0) {
    throw new NpkError("signature", "signature.yaml: fs.img.verity-offset must be a non-negative integer");
  }
  const hashes: NpkHashes = {
    metaHash: hexField(hashesDoc, ["meta", "hash"]),
    manifestHash: hexField(hashesDoc, ["manifest.yaml", "hash"]),
    verityHash: hexField(hashesDoc, ["fs.img", "verity-hash"]),
    verityOffset,
  };
  const encoded = field(signatureDoc, ["signature"]);
  if (typeof encoded !== "string" || !/^[A-Za-z0-9+/]+={0,2}$/.test(encoded)) {
    throw new NpkError("signature", "signature.yaml: signature must be a base64 string");
  }
  const signature = Buffer.from(encoded, "base64");
  if (signature.length !== ED25519_SIGNATURE_SIZE) {
    throw new NpkError("signature", `signature.yaml: signature has ${signature.length} bytes, expected 64`);
  }
  return { hashes, signedText, signature };
}

export function verifySignature(decoded: DecodedSignature, key: KeyObject | Buffer): void {
  const ok = verify(null, Buffer.from(decoded.signedText, "utf8"), toPublicKey(key), decoded.signature);
  if (!ok) throw new NpkError("signature", "invalid signature: signature.yaml was not signed by this key");
}
