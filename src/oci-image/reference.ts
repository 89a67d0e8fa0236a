// Image sources as the user writes them on the command line, following the transport names of
// skopeo/containers-image (`oci:`, `oci-archive:`, `docker-archive:`, `docker://`). Pure parsing;
// whether the file or directory exists is the reader's business.
import { OciImageError } from "./errors.js";
import { parseDigest, type Digest } from "./digest.js";

export type ImageSourceRef =
  | { kind: "oci-layout"; dir: string; tag?: string }
  | { kind: "oci-archive"; file: string; tag?: string }
  | { kind: "docker-archive"; file: string; tag?: string }
  | { kind: "registry"; ref: RegistryRef };

export interface RegistryRef {
  /** Host (and port) as written, e.g. `127.0.0.1:5000` or `registry-1.docker.io`. */
  host: string;
  /** Repository path, e.g. `library/busybox`. */
  repository: string;
  tag?: string;
  digest?: Digest;
}

const TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
const REPOSITORY_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const MAX_REPOSITORY_LENGTH = 255;
const DOCKER_HUB = "registry-1.docker.io";

/** True when `tag` is a valid image tag (up to 128 characters of `A-Z a-z 0-9 _ . -`, not starting with . or -). */
export function isValidTag(tag: string): boolean {
  return TAG.test(tag);
}

/** Splits `PATH[:TAG]` at the last colon when what follows is a tag (so `./a:b/c` stays a path). */
function splitPathTag(text: string): { path: string; tag?: string } {
  const colon = text.lastIndexOf(":");
  if (colon > 0) {
    const tag = text.slice(colon + 1);
    if (isValidTag(tag)) return { path: text.slice(0, colon), tag };
  }
  return { path: text };
}

function nonEmpty(path: string, source: string): string {
  if (path.length === 0) throw new OciImageError("usage", `${source}: no path given`);
  return path;
}

/** Parses a `--from-oci` source. Throws OciImageError("usage") naming what is wrong. */
export function parseImageSource(source: string): ImageSourceRef {
  if (source.includes("\0")) throw new OciImageError("usage", "image source contains a NUL byte");
  if (source.startsWith("docker://")) return { kind: "registry", ref: parseRegistryRef(source.slice(9)) };
  if (source.startsWith("oci-archive:")) {
    const { path, tag } = splitPathTag(source.slice(12));
    return { kind: "oci-archive", file: nonEmpty(path, source), ...(tag === undefined ? {} : { tag }) };
  }
  if (source.startsWith("docker-archive:")) {
    const { path, tag } = splitPathTag(source.slice(15));
    return { kind: "docker-archive", file: nonEmpty(path, source), ...(tag === undefined ? {} : { tag }) };
  }
  if (source.startsWith("oci:")) {
    const { path, tag } = splitPathTag(source.slice(4));
    return { kind: "oci-layout", dir: nonEmpty(path, source), ...(tag === undefined ? {} : { tag }) };
  }
  const transport = /^([a-z][a-z0-9+-]*):/.exec(source);
  if (transport !== null && !source.startsWith("./") && !source.startsWith("/")) {
    throw new OciImageError(
      "usage",
      `unknown image transport "${transport[1]}:" (use oci:, oci-archive:, docker-archive: or docker://)`,
    );
  }
  return { kind: "oci-layout", dir: nonEmpty(source, "image source") };
}

/**
 * Parses `HOST[:PORT]/NAME[:TAG][@sha256:HEX]` (the part after `docker://`). As with docker, a
 * first component without `.` or `:` that is not `localhost` is a Docker Hub repository
 * (`busybox` is `registry-1.docker.io/library/busybox`). No tag and no digest means `latest`.
 */
export function parseRegistryRef(text: string): RegistryRef {
  let rest = text;
  let digest: Digest | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = parseDigest(rest.slice(at + 1), `docker://${text}`);
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf("/");
  const colon = rest.lastIndexOf(":");
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!isValidTag(tag)) throw new OciImageError("usage", `docker://${text}: invalid tag "${tag}"`);
  }
  const parts = rest.split("/");
  const first = parts[0] ?? "";
  let host: string;
  if (parts.length > 1 && (first.includes(".") || first.includes(":") || first === "localhost")) {
    host = first === "docker.io" || first === "index.docker.io" ? DOCKER_HUB : first;
    parts.shift();
  } else {
    host = DOCKER_HUB;
  }
  if (host === DOCKER_HUB && parts.length === 1) parts.unshift("library");
  const repository = parts.join("/");
  if (repository.length === 0 || repository.length > MAX_REPOSITORY_LENGTH) {
    throw new OciImageError(
      "usage",
      `docker://${text}: repository name must be 1..${MAX_REPOSITORY_LENGTH} characters`,
    );
  }
  for (const component of parts) {
    if (!REPOSITORY_COMPONENT.test(component)) {
      throw new OciImageError(
        "usage",
        `docker://${text}: invalid repository component "${component}" (lowercase letters, digits and . _ - separators)`,
      );
    }
  }
  if (!/^[A-Za-z0-9.-]+(:\d{1,5})?$/.test(host) && !/^\[[0-9A-Fa-f:]+\](:\d{1,5})?$/.test(host)) {
    throw new OciImageError("usage", `docker://${text}: invalid registry host "${host}"`);
  }
  return {
    host,
    repository,
    ...(tag === undefined && digest === undefined ? { tag: "latest" } : {}),
    ...(tag === undefined ? {} : { tag }),
    ...(digest === undefined ? {} : { digest }),
  };
}

/** True for hosts reached over plain HTTP: loopback only (tests, a local registry). */
export function isLoopbackHost(host: string): boolean {
  const name = host.startsWith("[") ? host.slice(1, host.indexOf("]")) : host.replace(/:\d+$/, "");
  return name === "localhost" || name === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name);
}
