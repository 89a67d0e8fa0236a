// Which image of an index fits the machine the NPK is for, and whether a config does.
import { OciImageError } from "./errors.js";
import type { Descriptor, ImageConfig, Platform } from "./documents.js";

/** Node's process.arch to the GOARCH names images use. */
const GO_ARCH: Record<string, string> = {
  x64: "amd64",
  arm64: "arm64",
  arm: "arm",
  ia32: "386",
  ppc64: "ppc64le",
  s390x: "s390x",
  riscv64: "riscv64",
  loong64: "loong64",
  mips: "mips",
  mipsel: "mipsle",
};

/** The platform of this machine, in image terms. */
export function hostPlatform(): Platform {
  return { os: "linux", architecture: GO_ARCH[process.arch] ?? process.arch };
}

/** Parses `OS/ARCH[/VARIANT]` (as `--platform` takes it). */
export function parsePlatform(text: string): Platform {
  const parts = text.split("/");
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => !/^[a-z0-9_]+$/.test(p))) {
    throw new OciImageError(
      "usage",
      `invalid platform "${text}": expected OS/ARCH[/VARIANT], e.g. linux/arm64`,
    );
  }
  const [os, architecture, variant] = parts as [string, string, string | undefined];
  return { os, architecture, ...(variant === undefined ? {} : { variant }) };
}

export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, ...(p.variant === undefined ? [] : [p.variant])].join("/");
}

/**
 * True when an image built for `image` runs on `target`. The variant only matters when the
 * target names one (arm64's "v8" is its only variant and may be left out on either side).
 */
export function platformMatches(image: Platform, target: Platform): boolean {
  if (image.os !== target.os || image.architecture !== target.architecture) return false;
  if (target.variant === undefined || image.variant === undefined) return true;
  return image.variant === target.variant;
}

/** The manifest of an index for `target`; throws OciImageError("platform") listing what there is. */
export function selectPlatformManifest(manifests: Descriptor[], target: Platform, what: string): Descriptor {
  // Attestation manifests (buildkit) carry the platform unknown/unknown; they are not images.
  const images = manifests.filter((d) => d.platform?.os !== "unknown");
  const match = images.find((d) => d.platform !== undefined && platformMatches(d.platform, target));
  if (match !== undefined) return match;
  // A single entry without a platform: its config says what it is (checked by checkConfigPlatform).
  if (images.length === 1 && images[0]!.platform === undefined) return images[0]!;
  const available = images.map((d) =>
    d.platform === undefined ? "unspecified" : formatPlatform(d.platform),
  );
  throw new OciImageError(
    "platform",
    `${what}: no image for ${formatPlatform(target)}; the index has ${available.length === 0 ? "none" : available.join(", ")}`,
  );
}

/** Refuses a config whose os/architecture is not `target`'s. */
export function checkConfigPlatform(config: ImageConfig, target: Platform, what: string): void {
  const image: Platform = {
    os: config.os,
    architecture: config.architecture,
    ...(config.variant === undefined ? {} : { variant: config.variant }),
  };
  if (!platformMatches(image, target)) {
    throw new OciImageError(
      "platform",
      `${what}: the image is for ${formatPlatform(image)}, not ${formatPlatform(target)} (use --platform to pack for another machine)`,
    );
  }
}
