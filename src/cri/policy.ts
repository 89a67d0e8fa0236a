/**
 * The image policy (docs/cri.md "Image policy"): images can be required to come from configured
 * registries, `[cri] allowed_registries` (absent: any registry). Pure: it decides from names only,
 * so `PullImage` asks it before any connection is made, and the containers side asks it again for
 * an image already stored (the list may have changed since the pull) when a container is created.
 *
 * A registry is matched as `host[:port]`, the host case-insensitively and the port exactly
 * (`127.0.0.1:5000` does not allow `127.0.0.1:5001`); Docker Hub's names (`docker.io`,
 * `index.docker.io`, `registry-1.docker.io`) are one registry. A stored image is allowed when at
 * least one of its names (tags or repository digests) is from an allowed registry: its ID is the
 * digest of its config, so whichever allowed registry served it, it is that same content.
 *
 * `[cri] allowed_registries` entries are checked as `host[:port]` when the configuration is read
 * (daemon/config/schema.ts). Signatures are not checked (no sigstore/cosign or `policy.json`): the rule is the registry.
 */
import type { RegistryRef } from "../oci-image/reference.js";
import { canonicalRepository } from "./image-names.js";
import type { ImageRecord } from "./image-store.js";

const DOCKER_HUB_NAMES = new Set(["docker.io", "index.docker.io", "registry-1.docker.io"]);
/** An image refused by the policy; answered as gRPC PERMISSION_DENIED. */
export class ImagePolicyError extends Error {
  override name = "ImagePolicyError";
}

/** The registry as the policy compares it: lowercase, Docker Hub as `docker.io`. */
function normalize(registry: string): string {
  const lower = registry.toLowerCase();
  return DOCKER_HUB_NAMES.has(lower) ? "docker.io" : lower;
}

/** The registry part of a canonical name (`127.0.0.1:5000/team/app:1.2` → `127.0.0.1:5000`). */
function registryOfName(name: string): string {
  return name.split("/", 1)[0]!;
}

export class ImagePolicy {
  private readonly allowed: ReadonlySet<string> | undefined;

  /** `allowed`: the registries images may come from; undefined: any. */
  constructor(allowed: readonly string[] | undefined) {
    this.allowed = allowed === undefined ? undefined : new Set(allowed.map(normalize));
  }

  /** The allowed registries, or undefined for any (Status's verbose info). */
  get registries(): string[] | undefined {
    return this.allowed === undefined ? undefined : [...this.allowed];
  }

  /** Throws ImagePolicyError unless `ref`'s registry is allowed (before anything is fetched). */
  checkPull(ref: RegistryRef): void {
    if (this.allowed === undefined) return;
    const name = canonicalRepository(ref);
    const registry = normalize(registryOfName(name));
    if (!this.allowed.has(registry)) {
      throw new ImagePolicyError(
        `image ${name} is from registry ${registry}, which [cri] allowed_registries does not allow (allowed: ${this.list()})`,
      );
    }
  }

  /**
   * Throws ImagePolicyError unless a name of the stored image is from an allowed registry: for
   * the containers side, before a container is created from an image pulled earlier.
   */
  checkStored(image: Pick<ImageRecord, "id" | "repoTags" | "repoDigests">): void {
    if (this.allowed === undefined) return;
    const names = [...image.repoTags, ...image.repoDigests];
    if (names.some((n) => this.allowed!.has(normalize(registryOfName(n))))) return;
    const from = [...new Set(names.map((n) => normalize(registryOfName(n))))].join(", ") || "no registry";
    throw new ImagePolicyError(
      `image ${image.id} is from ${from}, which [cri] allowed_registries does not allow (allowed: ${this.list()})`,
    );
  }

  private list(): string {
    return this.allowed!.size === 0 ? "none" : [...this.allowed!].join(", ");
  }
}
