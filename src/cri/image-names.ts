/**
 * How CRI names images, decided here and nowhere else (pure). A kubelet names an image by a
 * reference (`busybox`, `docker.io/library/busybox:1.36`, `127.0.0.1:5000/app@sha256:…`) or by
 * the ID a pull answered (`sha256:<config digest>`, also accepted as the bare 64 hex digits).
 * References are read by oci-image's `parseRegistryRef` (its limits and refusals) and written
 * back in the canonical form kubelet and containerd show: Docker Hub as `docker.io`, the
 * `library/` prefix kept, the tag `latest` when none is given.
 */
import { isDigest, type Digest } from "../oci-image/digest.js";
import { parseRegistryRef, type RegistryRef } from "../oci-image/reference.js";

/** Longer names are refused before they are parsed. */
export const MAX_IMAGE_NAME_LENGTH = 1024;
const DOCKER_HUB_API_HOST = "registry-1.docker.io";

export type ImageLookup =
  | { kind: "id"; id: Digest }
  /** `tag` and `digest`: the canonical `repo:tag` / `repo@digest`, as stored in an image's record. */
  | { kind: "tag"; name: string; ref: RegistryRef }
  | { kind: "digest"; name: string; ref: RegistryRef };

export class ImageNameError extends Error {
  override name = "ImageNameError";
}

/** `docker.io/library/busybox`, `127.0.0.1:5000/team/app`. */
export function canonicalRepository(ref: RegistryRef): string {
  const host = ref.host === DOCKER_HUB_API_HOST ? "docker.io" : ref.host;
  return `${host}/${ref.repository}`;
}

/** The names an image pulled by `ref` is known by: its tag (if any) and its repository digest. */
export function namesOf(ref: RegistryRef, repoDigest: Digest | undefined): { tag?: string; digest?: string } {
  const repository = canonicalRepository(ref);
  const digest = ref.digest ?? repoDigest;
  return {
    ...(ref.tag === undefined ? {} : { tag: `${repository}:${ref.tag}` }),
    ...(digest === undefined ? {} : { digest: `${repository}@${digest}` }),
  };
}

/** Reads what a CRI request names an image by; throws ImageNameError with the reason. */
export function parseImageLookup(text: string): ImageLookup {
  if (text.length === 0) throw new ImageNameError("no image given");
  if (text.length > MAX_IMAGE_NAME_LENGTH) {
    throw new ImageNameError(`image name longer than ${MAX_IMAGE_NAME_LENGTH} characters`);
  }
  if (isDigest(text)) return { kind: "id", id: text };
  if (/^[0-9a-f]{64}$/.test(text)) return { kind: "id", id: `sha256:${text}` };
  const ref = parsePullReference(text);
  return ref.digest !== undefined
    ? { kind: "digest", name: namesOf(ref, undefined).digest!, ref }
    : { kind: "tag", name: namesOf(ref, undefined).tag!, ref };
}

/** A reference to pull: as parseImageLookup reads it, but an ID is no reference. */
export function parsePullReference(text: string): RegistryRef {
  if (text.length > MAX_IMAGE_NAME_LENGTH) {
    throw new ImageNameError(`image name longer than ${MAX_IMAGE_NAME_LENGTH} characters`);
  }
  // CRI references carry no scheme; `docker://` is the CLI's source syntax, not an image name.
  if (text.includes("://")) throw new ImageNameError(`${text}: an image reference has no scheme`);
  try {
    return parseRegistryRef(text);
  } catch (e) {
    throw new ImageNameError(e instanceof Error ? e.message.replace(/^docker:\/\//, "") : String(e));
  }
}
