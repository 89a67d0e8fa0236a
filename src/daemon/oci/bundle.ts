/**
 * OCI bundles on disk: `<runDir>/bundles/<container id>/config.json`, plus what a container needs
 * on the host before runc creates it: its private copy of skiff-init, its persist directory and
 * its listening sockets. Every path here is built from package data (name, version, socket
 * names, resource dirs) and goes through common/paths.ts.
 *
 * skiff-init enters the container as a copy in the bundle (`<bundle>/init`), bind-mounted
 * read-only at /dev/.skiff/init. A container that may remount (CAP_SYS_ADMIN) can make that
 * bind mount writable, but what it then writes is its own copy: the host's binary, which every
 * later container starts from, is never mounted into a container (the CVE-2019-5736 class).
 * The copy is written fresh with each bundle (a new inode, never one a container had).
 *
 * Sockets follow Northstar: the runtime creates, binds and listens on
 * `<socketDir>/<name>:<version>:<socket>` with the manifest's mode and owner, and the listening
 * fd goes into the container (fds 4, 5, ... sorted by socket name as Northstar passes them, named
 * in NORTHSTAR_SOCKET_<name> and SKIFF_SOCKET_<name>).
 * Node's net.Server creates the stream sockets; see `createSocket` for the two libuv behaviours
 * worked around. Node has no datagram or seqpacket Unix sockets and cannot receive an fd from
 * another process, so those are made by native/mksock (skiff-mksock), which the monitor is started
 * under: it creates each one at its fd number and execs skiff-monitor, which passes them on like
 * the others (Bundle.monitorWrapper; Bundle.socketFds holds "ignore" at their places).
 */
import { randomBytes } from "node:crypto";
import {
  chmod,
  chown,
  copyFile,
  mkdir,
  readdir,
  rename,
  rm,
  stat,
  unlink,
  writeFile,
} from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { dirname } from "node:path";
import { checkRealPathWithin, resolveImagePath, resolveWithin } from "../../common/paths.js";
import type { Manifest, Socket } from "../../npk/manifest/index.js";
import { resolveGroupIds, resolveNetwork, type HostFacts } from "./host.js";
import { buildOciSpec, serializeOciSpec, socketNamesOf, type OciSpecInput } from "./spec.js";
import { MAX_UNIX_SOCKET_PATH } from "../../common/unix-socket.js";
import { listen } from "../../common/listen.js";
import { bestEffort, messageOf, type CleanupLog } from "../errors.js";

export interface BundleLayout {
  /** Bundles live in `<runDir>/bundles`. */
  runDir: string;
  /** Directory of container sockets (bound by `sockets` mounts); default `<runDir>/sockets`. */
  socketDir?: string;
}

export interface BundleInput {
  /** Where cleanups after a failure log what they could not remove. */
  log: CleanupLog;
  layout: BundleLayout;
  manifest: Manifest;
  /** "name:version"; also the bundle directory's name and runc's container id. */
  containerId: string;
  /** The mounted package image. */
  rootfsPath: string;
  resourceRoots?: Readonly<Record<string, string>>;
  /** Persist mounts bind `<dataDir>/<manifest name>`, created here and owned by the manifest's uid:gid. */
  dataDir: string;
  /** Absolute cgroup path, e.g. /skiff/hello. */
  cgroupsPath: string;
  /** Host path of skiff-init, nativeBinary("skiff-init"): copied into the bundle, never mounted. */
  initHostPath: string;
  /** Host path of skiff-mksock, nativeBinary("skiff-mksock"): needed for datagram and seq_packet sockets. */
  mksockHostPath?: string;
  consoleSocketHostPath?: string;
  hostname?: string;
  overrides?: OciSpecInput["overrides"];
  extraEnv?: Record<string, string>;
  /** A CRI container's part beyond its manifest (oci/cri.ts). */
  cri?: OciSpecInput["cri"];
  /** From readHostFacts at daemon start. */
  host: HostFacts;
  signal?: AbortSignal;
}

export interface Bundle {
  bundleDir: string;
  /** `--preserve-fds` for runc: the status pipe plus one per socket. */
  preserveFds: number;
  /**
   * MonitorOptions.extraFds: the daemon's fds of the stream sockets, sorted by socket name, with
   * "ignore" where skiff-mksock (monitorWrapper) makes a datagram or seq_packet socket.
   */
  socketFds: (number | "ignore")[];
  /** MonitorOptions.wrapper: skiff-mksock and its arguments, or [] when every socket is a stream. */
  monitorWrapper: string[];
  warnings: string[];
  /**
   * Closes the daemon's copies of socketFds (the socket files stay). Call once the monitor holds
   * them (spawnMonitor resolved) or the start failed. Idempotent.
   */
  releaseSocketFds(): Promise<void>;
}

export function bundleDirOf(layout: BundleLayout, containerId: string): string {
  return resolveWithin(layout.runDir, "bundles", containerId);
}

function socketDirOf(layout: BundleLayout): string {
  return layout.socketDir ?? resolveWithin(layout.runDir, "sockets");
}

/** The container's private copy of skiff-init (the source of its /dev/.skiff/init bind mount). */
function initCopyOf(bundleDir: string): string {
  return resolveWithin(bundleDir, "init");
}

/** A container's persist directory, `<dataDir>/<name>`. */
function persistDirOf(dataDir: string, name: string): string {
  return resolveWithin(dataDir, name);
}

/** The host file of one of a container's sockets, `<socketDir>/<name>:<version>:<socket>`. */
function socketPathOf(socketDir: string, containerId: string, socket: string): string {
  return resolveWithin(socketDir, `${containerId}:${socket}`);
}

// INVARIANTS: the caller runs at most one writeBundle or removeBundle per container id at a time
// (the container lifecycle is serialized per container); different containers may run concurrently.

/**
 * Writes a container's bundle and prepares its host side. The spec is built (and can fail)
 * before anything is written; on a later failure the bundle and the sockets made so far are closed
 * and removed (the persist directory stays: it is the container's data).
 */
export async function writeBundle(input: BundleInput): Promise<Bundle> {
  const { manifest, layout, signal } = input;
  signal?.throwIfAborted();
  const socketNames = socketNamesOf(manifest);
  const socketDir = socketDirOf(layout);
  const bundleDir = bundleDirOf(layout, input.containerId);
  const initCopy = initCopyOf(bundleDir);
  await checkResourceDirs(manifest, input.resourceRoots ?? {});
  const { spec, warnings, preserveFds } = buildOciSpec({
    manifest,
    containerId: input.containerId,
    rootfsPath: input.rootfsPath,
    resourceRoots: input.resourceRoots,
    dataDir: input.dataDir,
    socketDir,
    missingBindSources: await missingBindSources(manifest),
    cgroupsPath: input.cgroupsPath,
    hostRlimitHard: input.host.rlimitHard,
    hostname: input.hostname,
    network: await resolveNetwork(manifest, input.host.netnsDir),
    initHostPath: initCopy,
    consoleSocketHostPath: input.consoleSocketHostPath,
    overrides: input.overrides,
    extraEnv: input.extraEnv,
    ...(input.cri ? { cri: input.cri } : {}),
    preservedFds: 1 + socketNames.length,
    groupIds: await resolveGroupIds(manifest, input.rootfsPath),
    arch: input.host.arch,
  });
  signal?.throwIfAborted();

  const servers: Server[] = [];
  const socketFds: (number | "ignore")[] = [];
  const native: string[] = [];
  const release = async (): Promise<void> => {
    await Promise.all(servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
  };
  try {
    // One call creates `<runDir>/bundles` too, with the same mode.
    await mkdir(bundleDir, { recursive: true, mode: 0o700 });
    const config = resolveWithin(bundleDir, "config.json");
    // Two files that do not depend on each other, written at the same time; both settle before
    // a failure removes the bundle (no write may land after the removal).
    const written = await Promise.allSettled([
      copyInit(input.initHostPath, initCopy),
      writeFile(`${config}.tmp`, serializeOciSpec(spec), { mode: 0o600 }).then(() =>
        rename(`${config}.tmp`, config),
      ),
    ]);
    for (const result of written) if (result.status === "rejected") throw result.reason;

    const mountTypes = new Set(Object.values(manifest.mounts ?? {}).map((mount) => mount.type));
    if (mountTypes.has("persist")) {
      const persistDir = persistDirOf(input.dataDir, manifest.name);
      await mkdir(persistDir, { recursive: true, mode: 0o700 });
      await chown(persistDir, manifest.uid, manifest.gid);
    }

    // A `sockets` mount binds the directory, so it must exist even when this container has no sockets.
    if (socketNames.length > 0 || mountTypes.has("sockets")) {
      await mkdir(socketDir, { recursive: true, mode: 0o755 });
    }
    for (const [i, name] of socketNames.entries()) {
      signal?.throwIfAborted();
      const socket = manifest.sockets![name]!;
      const path = socketPathOf(socketDir, input.containerId, name);
      checkSocketPath(path, `sockets.${name}`);
      if (socket.type === "stream") {
        // passcred is set by skiff-init on the fd it is passed (spec.ts, initOptions).
        const server = await createSocket(path, socket, `sockets.${name}`, input.log);
        servers.push(server);
        socketFds.push(serverFd(server));
        continue;
      }
      if (input.mksockHostPath === undefined) {
        throw new Error(`sockets.${name}: ${socket.type} sockets need skiff-mksock`);
      }
      // The monitor's fd 3 + i becomes the container's fd 4 + i (monitor.h, runtime.c).
      native.push("--socket", String(3 + i), socket.type, socket.passcred === true ? "1" : "0");
      native.push(socket.mode.toString(8), String(socket.uid ?? -1), String(socket.gid ?? -1), path);
      socketFds.push("ignore");
    }
  } catch (error) {
    await release();
    await removeBundle(layout, input.containerId);
    throw error;
  }
  const monitorWrapper = native.length === 0 ? [] : [input.mksockHostPath!, ...native, "--"];
  return { bundleDir, preserveFds, socketFds, monitorWrapper, warnings, releaseSocketFds: release };
}

/**
 * Removes a container's bundle directory and its socket files. Missing ones are fine: removal
 * after a failed or partial start, or twice, is normal.
 */
export async function removeBundle(layout: BundleLayout, containerId: string): Promise<void> {
  await rm(bundleDirOf(layout, containerId), { recursive: true, force: true });
  await removeSockets(socketDirOf(layout), containerId);
}

async function removeSockets(socketDir: string, containerId: string): Promise<void> {
  let entries: string[];
  try {
    entries = await readdir(socketDir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
    throw error;
  }
  // A version never contains ':', so "<name>:<version>:" names exactly this container's sockets.
  const prefix = `${containerId}:`;
  await Promise.all(
    entries
      .filter((entry) => entry.startsWith(prefix))
      .map((entry) => rm(resolveWithin(socketDir, entry), { force: true })),
  );
}

/**
 * Copies skiff-init to `dest` through a temporary name: a fresh file (new inode) each time, so
 * whatever a previous instance did to its copy is gone. A small static binary; the copy runs
 * in the kernel (copy_file_range) and happens while the bundle is written (prepare included),
 * never on the exec fifo path of a prepared start.
 */
async function copyInit(source: string, dest: string): Promise<void> {
  const temporary = `${dest}.new-${randomBytes(6).toString("hex")}`;
  try {
    await copyFile(source, temporary);
    await chmod(temporary, 0o555);
    await rename(temporary, dest);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}

/**
 * Each resource mount's `dir` must resolve, on disk, inside its resource's mounted image: the
 * manifest check refuses `..` in it, and this refuses a symbolic link in the image that leads
 * out (runc would follow it on the host). Images are read-only, so the answer cannot change.
 */
async function checkResourceDirs(manifest: Manifest, roots: Readonly<Record<string, string>>): Promise<void> {
  for (const [target, mount] of Object.entries(manifest.mounts ?? {})) {
    if (mount.type !== "resource") continue;
    const root = roots[mount.name];
    if (root === undefined) continue; // buildMounts reports the missing resource
    const source = resolveImagePath(root, mount.dir);
    await checkRealPathWithin(root, source).catch((error: unknown) => {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") {
        throw new Error(`mounts.${target}: ${mount.dir} does not exist in resource ${mount.name}`);
      }
      throw new Error(`mounts.${target}: ${messageOf(error)}`);
    });
  }
}

/**
 * A listening Unix socket at `path` with the manifest's mode and owner.
 *
 * Two libuv behaviours are worked around:
 * - closing a pipe server unlinks the path it was bound to, so the socket is bound to a temporary
 *   name and renamed into place (the socket follows its inode); the later close unlinks nothing.
 *   The rename also means the socket appears with its final mode and owner already set.
 * - a listening server accepts connections whenever the event loop runs; with maxConnections 0
 *   Node closes any it accepts, so a client that connects before the daemon hands the fd over
 *   sees a reset instead of a connection nobody serves.
 */
function checkSocketPath(path: string, field: string): void {
  if (Buffer.byteLength(path) > MAX_UNIX_SOCKET_PATH) {
    throw new Error(`${field}: socket path ${path} is longer than ${MAX_UNIX_SOCKET_PATH} bytes`);
  }
}

async function createSocket(path: string, socket: Socket, field: string, log: CleanupLog): Promise<Server> {
  const temporary = resolveWithin(dirname(path), `.new-${randomBytes(6).toString("hex")}`);
  const server = createServer();
  server.maxConnections = 0;
  try {
    await listen(server, { path: temporary, backlog: 128 });
    await chmod(temporary, socket.mode);
    if (socket.uid !== undefined || socket.gid !== undefined) {
      await chown(temporary, socket.uid ?? -1, socket.gid ?? -1);
    }
    await rename(temporary, path);
    return server;
  } catch (error) {
    server.close();
    await bestEffort(log, `removing ${temporary}`, unlink(temporary));
    throw new Error(`${field}: cannot create ${path}: ${messageOf(error)}`);
  }
}

/** The fd of a listening server. Node exposes it only on the internal handle (present on Unix). */
function serverFd(server: Server): number {
  const fd = (server as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  if (typeof fd !== "number" || fd < 0) throw new Error("cannot get the fd of a listening socket");
  return fd;
}

async function missingBindSources(manifest: Manifest): Promise<Set<string>> {
  const missing = new Set<string>();
  for (const mount of Object.values(manifest.mounts ?? {})) {
    if (mount.type !== "bind") continue;
    try {
      await stat(mount.host);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") missing.add(mount.host);
      else throw error;
    }
  }
  return missing;
}
