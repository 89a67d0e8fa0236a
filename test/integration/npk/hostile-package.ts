// Signed NPKs whose manifest.yaml is arbitrary text. `skiff pack` refuses such manifests (it
// parses them), so this takes a valid signed package apart and puts it back together around
// the given manifest bytes, re-signing the hashes with the example key: the package is
// authentic, only its content is hostile.
import { createHash } from "node:crypto";
import { open, writeFile } from "node:fs/promises";
import { FS_IMG_ALIGNMENT, FS_IMG_NAME, MANIFEST_NAME, SIGNATURE_NAME } from "../../../src/npk/npk.js";
import { decodeSignature, readPrivateKey, signHashes } from "../../../src/npk/signature.js";
import { findEntry, readEntry, readZip, writeZip } from "../../../src/npk/zip.js";
import { EXAMPLE_KEY } from "../../helpers/npk.js";

const sha256Hex = (data: Buffer) => createHash("sha256").update(data).digest("hex");

/** Writes `out`: `base` (a signed NPK) with `manifest` as its manifest.yaml, signed again. */
export async function withManifest(base: string, manifest: Buffer, out: string): Promise<void> {
  const file = await open(base, "r");
  try {
    const zip = await readZip(file);
    const entry = (name: string) => {
      const found = findEntry(zip, name);
      if (found === undefined) throw new Error(`${base} has no ${name}`);
      return found;
    };
    const signature = decodeSignature((await readEntry(file, entry(SIGNATURE_NAME))).toString("utf8"));
    const fsImage = await readEntry(file, entry(FS_IMG_NAME), 64 * 1024 * 1024);
    const hashes = { ...signature.hashes, manifestHash: sha256Hex(manifest) };
    const signed = signHashes(hashes, await readPrivateKey(EXAMPLE_KEY));
    const fsImagePath = `${out}.fs.img`;
    await writeFile(fsImagePath, fsImage);
    await writeZip(
      out,
      [
        { name: MANIFEST_NAME, data: manifest },
        { name: SIGNATURE_NAME, data: Buffer.from(signed, "utf8") },
        { name: FS_IMG_NAME, data: { path: fsImagePath }, align: FS_IMG_ALIGNMENT },
      ],
      { comment: zip.comment },
    );
  } finally {
    await file.close();
  }
}

/** The manifest head every hostile manifest below starts with (a valid application). */
export function manifestHead(name: string): string {
  return `name: ${name}\nversion: 1.0.0\ninit: /bin/true\nuid: 1000\ngid: 1000\n`;
}

/** `env:` with `count` distinct variables, short ones (a million fit in 12 MB, as in the report). */
export function envManifest(name: string, count: number): Buffer {
  const lines = [manifestHead(name), "env:\n"];
  for (let i = 0; i < count; i++) lines.push(`  E${i}: v\n`);
  return Buffer.from(lines.join(""), "utf8");
}

/**
 * A YAML alias bomb under `custom:`: `levels` anchors, each a list of `width` aliases of the one
 * before, padded with harmless comment lines to `padTo` bytes. Expanded it has width^levels values.
 */
export function aliasBombManifest(name: string, levels: number, width: number, padTo = 0): Buffer {
  const lines = [manifestHead(name), "custom:\n", "  l0: &l0 [bomb, bomb, bomb, bomb]\n"];
  for (let level = 1; level <= levels; level++) {
    const refs = Array.from({ length: width }, () => `*l${level - 1}`).join(", ");
    lines.push(`  l${level}: &l${level} [${refs}]\n`);
  }
  let text = lines.join("");
  const pad = "# padding\n";
  if (text.length < padTo) text += pad.repeat(Math.ceil((padTo - text.length) / pad.length));
  return Buffer.from(text, "utf8");
}
