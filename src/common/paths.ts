/**
 * Paths built from package or request data. Every such path goes through `resolveWithin` (or
 * `resolveImagePath`), which refuses anything that would leave its root: a package named `..`
 * must not turn `<data_dir>/<name>` into `data_dir`'s parent, and a resource `dir` of
 * `/../../..` must not bind the host's root into a container.
 *
 * The checks are lexical (no file system access, no symlink resolution): they hold for any
 * root, existing or not. Where a path is resolved on disk inside an image that could hold
 * symbolic links, the caller also checks the real path (see `checkRealPathWithin`).
 */
import { realpath } from "node:fs/promises";
import { isAbsolute } from "node:path";

/** Longest file name (one path component) Linux file systems take: NAME_MAX, in bytes. */
const NAME_MAX_BYTES = 255;

/** A path built from untrusted data would leave its root, or is not a path at all. */
export class PathEscapeError extends Error {
  override name = "PathEscapeError";
  constructor(
    /** The root the path had to stay in. */
    readonly root: string,
    /** The offending part, as given. */
    readonly part: string,
    readonly reason: string,
  ) {
    super(`path part ${JSON.stringify(part)} under ${root}: ${reason}`);
  }
}

/**
 * Why `component` is not one safe file name, or undefined when it is: not empty, not `.` or
 * `..`, no `/`, no NUL, at most NAME_MAX_BYTES bytes.
 */
export function pathComponentProblem(component: string): string | undefined {
  if (component === "") return "empty path component";
  if (component === "." || component === "..") return `"${component}" is not allowed as a path component`;
  if (component.includes("/")) return "contains '/'";
  if (component.includes("\0")) return "contains a NUL byte";
  if (Buffer.byteLength(component) > NAME_MAX_BYTES) return `longer than ${NAME_MAX_BYTES} bytes`;
  return undefined;
}

/**
 * `root/parts[0]/parts[1]/...`, where each part is a relative path of one or more components
 * separated by single `/`. Throws PathEscapeError for an absolute part, an empty part or
 * component (`a//b`, a trailing `/`), `.`, `..`, NUL, or a component longer than NAME_MAX.
 * `root` is the trusted side (configuration or a fixed layout) and must be absolute.
 */
export function resolveWithin(root: string, ...parts: string[]): string {
  if (!isAbsolute(root)) throw new PathEscapeError(root, "", "the root must be an absolute path");
  let path = root.length > 1 ? root.replace(/\/+$/, "") : root;
  for (const part of parts) {
    if (part.startsWith("/")) throw new PathEscapeError(root, part, "absolute path");
    for (const component of part.split("/")) {
      const problem = pathComponentProblem(component);
      if (problem !== undefined) throw new PathEscapeError(root, part, problem);
      path = path === "/" ? `/${component}` : `${path}/${component}`;
    }
  }
  return path;
}

/**
 * The components of an absolute path inside an image (a resource's `dir`), with empty
 * components (`//`, a trailing `/`) dropped; undefined when it is not absolute or holds `.`,
 * `..` or a NUL. `/` gives no components: the image's root.
 */
export function imagePathComponents(path: string): string[] | undefined {
  if (!path.startsWith("/") || path.includes("\0")) return undefined;
  const components = path.split("/").filter((component) => component !== "");
  return components.some((c) => c === "." || c === "..") ? undefined : components;
}

/** `root` joined with an absolute in-image path (see imagePathComponents); throws PathEscapeError. */
export function resolveImagePath(root: string, path: string): string {
  const components = imagePathComponents(path);
  if (components === undefined) {
    throw new PathEscapeError(root, path, "must be an absolute path without . or .. components");
  }
  return resolveWithin(root, ...components);
}

/**
 * Resolves `path` on disk (following symbolic links) and checks that it is still inside `root`
 * (also resolved). For paths inside read-only images, whose links cannot change afterwards: a
 * link in an image that points at `/etc` would otherwise be followed on the host.
 */
export async function checkRealPathWithin(root: string, path: string): Promise<string> {
  const [realRoot, real] = await Promise.all([realpath(root), realpath(path)]);
  if (real !== realRoot && !real.startsWith(realRoot === "/" ? "/" : `${realRoot}/`)) {
    throw new PathEscapeError(root, path, `resolves to ${real}, outside ${realRoot}`);
  }
  return real;
}
