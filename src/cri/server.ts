/**
 * Skiff's Kubernetes CRI v1 endpoint (docs/cri.md): `runtime.v1.RuntimeService` and
 * `runtime.v1.ImageService` over gRPC on a Unix socket, started by the daemon only when
 * `[cri] socket` is configured. Like the console, it is an edge: it reads requests, asks the
 * parts that own the answers (the toolchain's health, the image store) and writes responses.
 *
 * Every method of the vendored proto is registered: the implemented ones below, every other one
 * answering `UNIMPLEMENTED` with the reason in `UNIMPLEMENTED` (the table docs/cri.md lists).
 * `startCriServer` refuses to start when a method of the proto is in neither, or the table names
 * a method the proto lacks, so a newer api.proto cannot leave a method silently unanswered.
 */
import { lstat, rm } from "node:fs/promises";
import { createServer } from "node:net";
import {
  Server,
  ServerCredentials,
  status as GrpcStatus,
  type MethodDefinition,
  type ServiceClientConstructor,
  type ServerErrorResponse,
  type ServerUnaryCall,
  type ServerWritableStream,
  type UntypedHandleCall,
  type sendUnaryData,
} from "@grpc/grpc-js";
import type { Logger } from "pino";
import { SKIFF_VERSION } from "../common/version.js";
import { MAX_UNIX_SOCKET_PATH } from "../common/unix-socket.js";
import { OciImageError, type OciImageErrorKind } from "../oci-image/errors.js";
import { listen } from "../common/listen.js";
import { AuthorityFront } from "./authority.js";
import { RuntimeHandlerError, type RuntimeHandlerErrorKind, type RuntimeHandlers } from "./handlers.js";
import { ImageNameError, parseImageLookup, parsePullReference } from "./image-names.js";
import type { ImageRecord, ImageStore } from "./image-store.js";
import { ImagePolicyError, type ImagePolicy } from "./policy.js";
import { loadCriServices } from "./proto.js";
import { CriContainerError, type CriContainers } from "./containers/index.js";
import { containerHandlers } from "./containers/handlers.js";
import { PodError, podHandlers, type PodStore } from "./pods/index.js";
import { StreamingError, streamingHandlers, type StreamingBackend } from "./streaming/cri.js";

/** What `Version` answers: the CRI API this endpoint speaks, and who it is. */
export const CRI_API_VERSION = "v1";
export const CRI_RUNTIME_NAME = "skiff";
/** `VersionResponse.version`: the version of the kubelet runtime API, "0.1.0" for every v1 runtime. */
const KUBELET_API_VERSION = "0.1.0";

const PODS_STREAMING =
  "the streaming variants of the pod methods are not implemented (the unary ones answer the same)";
const POD_METRICS = "pod metrics are not implemented (PodSandboxStats answers the cgroup statistics)";
const CONTAINERS_NEXT = "container streams and events are not implemented yet (docs/cri.md, Not yet)";

/** Every method Skiff does not implement, with the reason its UNIMPLEMENTED answer carries. */
export const UNIMPLEMENTED: Readonly<Record<string, string>> = {
  "RuntimeService/StreamPodSandboxes": PODS_STREAMING,
  "RuntimeService/StreamPodSandboxStats": PODS_STREAMING,
  "RuntimeService/ListPodSandboxMetrics": POD_METRICS,
  "RuntimeService/StreamPodSandboxMetrics": POD_METRICS,
  "RuntimeService/ListMetricDescriptors": POD_METRICS,
  "RuntimeService/StreamContainers": CONTAINERS_NEXT,
  "RuntimeService/StreamContainerStats": CONTAINERS_NEXT,
  "RuntimeService/GetContainerEvents": CONTAINERS_NEXT,
  "RuntimeService/CheckpointContainer": "checkpointing containers (CRIU) is not supported by Skiff",
  "ImageService/StreamImages": "ListImages answers the same; the streaming variant is not implemented yet",
};

/** What the endpoint needs from the daemon. */
export interface CriServerOptions {
  /** Absolute path of the Unix socket; a stale socket file there is replaced. */
  socket: string;
  images: ImageStore;
  /** The pod sandboxes (src/cri/pods/). */
  pods: PodStore;
  /** Containers in pods (src/cri/containers/). */
  containers: CriContainers;
  /** The OCI runtimes pods run under (RuntimeClass), probed fresh for each `Status`. */
  handlers: RuntimeHandlers;
  /** Where images may come from (`[cri] allowed_registries`). */
  policy: ImagePolicy;
  /** The toolchain's health (runtime, monitor, init), checked fresh for each `Status`. */
  runtimeHealth: () => Promise<{ status: "ok" | "degraded"; problems: string[] }>;
  /** ExecSync, Exec, Attach, PortForward (docs/cri.md, "Streaming"); absent: they answer UNIMPLEMENTED. */
  streaming?: StreamingBackend;
  log: Logger;
}

export interface CriServer {
  readonly socket: string;
  /** Stops accepting, cancels calls in progress (pulls are aborted) and removes the socket. */
  close(): Promise<void>;
}

type Handler = (call: ServerUnaryCall<Record<string, unknown>, unknown>) => Promise<unknown>;

/** A refusal with its gRPC status, thrown by handlers and answered as it is. */
class CriError extends Error {
  constructor(
    readonly code: GrpcStatus,
    message: string,
  ) {
    super(message);
  }
}

export async function startCriServer(options: CriServerOptions): Promise<CriServer> {
  const { socket, log } = options;
  if (!socket.startsWith("/") || Buffer.byteLength(socket) > MAX_UNIX_SOCKET_PATH) {
    throw new Error(
      `cri.socket: ${socket}: expected an absolute path of at most ${MAX_UNIX_SOCKET_PATH} bytes`,
    );
  }
  const services = loadCriServices();
  const pulls = new AbortController();
  const handlers = criHandlers(options, pulls.signal);
  const server = new Server({ "grpc.max_receive_message_length": 4 * 1024 * 1024 });
  const unknown = new Set(Object.keys(UNIMPLEMENTED));
  const both: [string, ServiceClientConstructor][] = [
    ["RuntimeService", services.RuntimeService],
    ["ImageService", services.ImageService],
  ];
  for (const [serviceName, service] of both) {
    const implementation: Record<string, UntypedHandleCall> = {};
    for (const [method, definition] of Object.entries(service.service)) {
      const key = `${serviceName}/${method}`;
      unknown.delete(key);
      const handler = handlers[key];
      const reason = UNIMPLEMENTED[key];
      if (handler !== undefined) implementation[method] = unary(key, handler, log);
      else if (reason !== undefined)
        implementation[method] = unimplemented(definition as MethodDefinition<unknown, unknown>, reason);
      else throw new Error(`CRI: ${key} has neither a handler nor a reason in UNIMPLEMENTED`);
    }
    server.addService(service.service, implementation);
  }
  if (unknown.size > 0)
    throw new Error(`CRI: UNIMPLEMENTED names methods the proto lacks: ${[...unknown].join(", ")}`);
  await removeStaleSocket(socket);
  // Every connection reaches the gRPC server through the :authority fix-up (authority.ts), which
  // lets grpc-go clients that send the socket's path as authority in (old kubelets, crictl 1.26).
  const injector = server.createConnectionInjector(ServerCredentials.createInsecure());
  const listener = createServer((connection) => injector.injectConnection(new AuthorityFront(connection)));
  await listen(listener, { path: socket }).catch((error: Error) => {
    throw new Error(`cri: cannot listen on unix://${socket}: ${error.message}`);
  });
  listener.on("error", (error) => log.error({ err: error }, "CRI socket: accept failed"));
  return {
    socket,
    async close() {
      pulls.abort();
      listener.close();
      await options.streaming?.server.close();
      // tryShutdown lets calls finish; after a grace period whatever is left is cancelled.
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => server.forceShutdown(), 2000);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
      await rm(socket, { force: true });
    },
  };
}

/** A socket file left by a daemon that did not shut down; anything else at the path is refused. */
async function removeStaleSocket(socket: string): Promise<void> {
  const st = await lstat(socket).catch((e: NodeJS.ErrnoException) => {
    if (e.code === "ENOENT") return undefined;
    throw e;
  });
  if (st === undefined) return;
  if (!st.isSocket()) throw new Error(`cri: ${socket} exists and is not a socket`);
  await rm(socket);
}

function unary(key: string, handler: Handler, log: Logger): UntypedHandleCall {
  return (call: ServerUnaryCall<Record<string, unknown>, unknown>, callback: sendUnaryData<unknown>) => {
    // Through a promise, so a handler that throws before its first await is answered the same way.
    Promise.resolve(call)
      .then(handler)
      .then(
        (response) => callback(null, response),
        (e: unknown) => {
          const error = toServiceError(e);
          if (error.code === GrpcStatus.INTERNAL) log.error({ err: e, method: key }, "CRI call failed");
          else log.debug({ method: key, code: error.code, details: error.details }, "CRI call refused");
          callback(error);
        },
      );
  };
}

function unimplemented(definition: MethodDefinition<unknown, unknown>, reason: string): UntypedHandleCall {
  const error = { code: GrpcStatus.UNIMPLEMENTED, details: reason } as ServerErrorResponse;
  if (definition.responseStream) {
    return (call: ServerWritableStream<unknown, unknown>) => call.emit("error", error);
  }
  return (_call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => callback(error);
}

const OCI_CODES: Record<OciImageErrorKind, GrpcStatus> = {
  usage: GrpcStatus.INVALID_ARGUMENT,
  source: GrpcStatus.UNAVAILABLE,
  registry: GrpcStatus.UNAVAILABLE,
  format: GrpcStatus.FAILED_PRECONDITION,
  digest: GrpcStatus.DATA_LOSS,
  size: GrpcStatus.RESOURCE_EXHAUSTED,
  platform: GrpcStatus.FAILED_PRECONDITION,
  layer: GrpcStatus.FAILED_PRECONDITION,
  config: GrpcStatus.FAILED_PRECONDITION,
};

const HANDLER_CODES: Record<RuntimeHandlerErrorKind, GrpcStatus> = {
  unknown: GrpcStatus.NOT_FOUND,
  dead: GrpcStatus.FAILED_PRECONDITION,
  none_alive: GrpcStatus.UNAVAILABLE,
};

/** The one internal → gRPC error mapping of the endpoint. */
function toServiceError(e: unknown): ServerErrorResponse {
  const answer = (code: GrpcStatus, details: string) => ({ code, details }) as ServerErrorResponse;
  if (e instanceof CriError) return answer(e.code, e.message);
  if (e instanceof CriContainerError) return answer(GrpcStatus[e.code], e.message);
  if (e instanceof PodError) return answer(e.code, e.message);
  if (e instanceof StreamingError) return answer(e.code, e.message);
  if (e instanceof ImageNameError) return answer(GrpcStatus.INVALID_ARGUMENT, e.message);
  if (e instanceof OciImageError) return answer(OCI_CODES[e.kind], e.message);
  if (e instanceof RuntimeHandlerError) return answer(HANDLER_CODES[e.kind], e.message);
  if (e instanceof ImagePolicyError) return answer(GrpcStatus.PERMISSION_DENIED, e.message);
  return answer(GrpcStatus.INTERNAL, e instanceof Error ? e.message : String(e));
}

/** A string field of a request message (proto3 strings default to ""). */
function text(message: unknown, field: string): string {
  const value = (message as Record<string, unknown> | null | undefined)?.[field];
  return typeof value === "string" ? value : "";
}

function imageMessage(record: ImageRecord): Record<string, unknown> {
  // CRI: uid when the image's user is numeric, username otherwise (empty: root, uid 0).
  const user = record.user.split(":")[0] ?? "";
  const uid = user === "" ? 0 : /^\d+$/.test(user) ? Number(user) : undefined;
  return {
    id: record.id,
    repo_tags: record.repoTags,
    repo_digests: record.repoDigests,
    size: String(record.size),
    ...(uid === undefined ? { username: user } : { uid: { value: String(uid) } }),
    spec: { image: record.id, annotations: record.annotations },
    pinned: false,
  };
}

/** The implemented methods, by `Service/Method`. */
function criHandlers(options: CriServerOptions, shutdown: AbortSignal): Record<string, Handler> {
  const { images, handlers, policy } = options;
  return {
    ...podHandlers(
      options.pods,
      async (requested, load) => (await options.handlers.pick(requested, load)).name,
    ),
    ...streamingHandlers(options.streaming),
    ...containerHandlers(options.containers),
    "RuntimeService/Version": () =>
      Promise.resolve({
        version: KUBELET_API_VERSION,
        runtime_name: CRI_RUNTIME_NAME,
        runtime_version: SKIFF_VERSION,
        runtime_api_version: CRI_API_VERSION,
      }),
    "RuntimeService/Status": async (call) => {
      const [health, states, network] = await Promise.all([
        options.runtimeHealth(),
        handlers.check(),
        options.pods.network(),
      ]);
      const live = states.filter((s) => s.alive);
      const dead = states.filter((s) => !s.alive);
      const deadText = dead.map((s) => `${s.name}: ${s.problem}`).join("; ");
      const toolchainOk = health.status === "ok";
      const conditions = [
        {
          type: "RuntimeReady",
          status: toolchainOk && live.length > 0,
          reason: !toolchainOk ? "ToolchainDegraded" : live.length === 0 ? "NoRuntimeHandler" : "",
          message: !toolchainOk ? health.problems.join("; ") : live.length === 0 ? deadText : "",
        },
        {
          type: "NetworkReady",
          status: network.ready,
          reason: network.reason,
          message: network.message,
        },
        // Informational (a kubelet acts on RuntimeReady and NetworkReady only): which handler is
        // dead and why, while pods can still run under the others.
        {
          type: "RuntimeHandlersReady",
          status: dead.length === 0,
          reason: dead.length === 0 ? "" : "RuntimeHandlerDead",
          message: deadText,
        },
      ];
      const verbose = (call.request as { verbose?: boolean }).verbose === true;
      // "" is the default handler: a pod naming none is spread across the live ones.
      const features = { recursive_read_only_mounts: false, user_namespaces: false };
      const runtimeHandlers = live.length === 0 ? [] : ["", ...live.map((s) => s.name)];
      return {
        status: { conditions },
        runtime_handlers: runtimeHandlers.map((name) => ({ name, features })),
        info: verbose
          ? {
              toolchain: JSON.stringify(health),
              runtimeHandlers: JSON.stringify(states),
              imagePolicy: JSON.stringify({ allowedRegistries: policy.registries ?? "any" }),
            }
          : {},
      };
    },
    // Skiff writes cgroup files itself and hands runc cgroupfs paths (docs/cgroups.md); it
    // never asks systemd for a scope, so the kubelet must use the cgroupfs driver.
    "RuntimeService/RuntimeConfig": () => Promise.resolve({ linux: { cgroup_driver: "CGROUPFS" } }),
    "ImageService/PullImage": async (call) => {
      const reference = text(call.request.image, "image");
      // The policy decides from the name alone, before any connection is made.
      policy.checkPull(parsePullReference(reference));
      const auth = call.request.auth as Record<string, unknown> | null | undefined;
      const username = text(auth, "username");
      const password = text(auth, "password");
      if (
        text(auth, "auth") !== "" ||
        text(auth, "identity_token") !== "" ||
        text(auth, "registry_token") !== ""
      ) {
        throw new CriError(GrpcStatus.INVALID_ARGUMENT, "only username/password registry auth is supported");
      }
      const cancelled = new AbortController();
      call.on("cancelled", () => cancelled.abort());
      const signal = AbortSignal.any([cancelled.signal, shutdown]);
      try {
        const record = await images.pull(reference, {
          signal,
          ...(username === "" && password === "" ? {} : { credentials: { username, password } }),
        });
        return { image_ref: record.id };
      } catch (e) {
        // An abort surfaces from oci-image as whatever its reader was doing (often a source
        // error); the signal says what really happened.
        if (!signal.aborted) throw e;
        const why = shutdown.aborted ? "the daemon is shutting down" : "cancelled by the client";
        throw new CriError(GrpcStatus.CANCELLED, `pull of ${reference}: ${why}`);
      }
    },
    "ImageService/ListImages": (call) => {
      const wanted = text((call.request.filter as Record<string, unknown> | null)?.image, "image");
      const list =
        wanted === ""
          ? images.list()
          : [images.find(parseImageLookup(wanted))].filter((r): r is ImageRecord => r !== undefined);
      return Promise.resolve({ images: list.map(imageMessage) });
    },
    "ImageService/ImageStatus": (call) => {
      const record = images.find(parseImageLookup(text(call.request.image, "image")));
      // CRI: an image that is not stored is answered with no image, not with an error.
      if (record === undefined) return Promise.resolve({ info: {} });
      const verbose = (call.request as { verbose?: boolean }).verbose === true;
      return Promise.resolve({
        image: imageMessage(record),
        info: verbose ? { rootfs: images.rootfsOf(record.id) } : {},
      });
    },
    "ImageService/RemoveImage": async (call) => {
      const lookup = parseImageLookup(text(call.request.image, "image"));
      // A container's overlay has the image's root as its lower layer: it must stay.
      const stored = images.find(lookup);
      const user = stored && options.containers.usingImage(stored.id);
      if (user)
        throw new CriError(GrpcStatus.FAILED_PRECONDITION, `image ${stored.id} is used by container ${user}`);
      // CRI: removing an image that is not there succeeds.
      await images.remove(lookup);
      return {};
    },
    "ImageService/ImageFsInfo": () => {
      const list = images.list();
      const usage = {
        timestamp: String(BigInt(Date.now()) * 1_000_000n),
        fs_id: { mountpoint: images.directory },
        used_bytes: { value: String(list.reduce((sum, r) => sum + r.unpackedBytes, 0)) },
        inodes_used: { value: String(list.reduce((sum, r) => sum + r.inodes, 0)) },
      };
      return Promise.resolve({ image_filesystems: [usage], container_filesystems: [] });
    },
  };
}
