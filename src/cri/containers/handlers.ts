/**
 * The RuntimeService methods of containers in pods, as server.ts registers them: request
 * fields in, CriContainers' answers out (the gRPC mapping of errors is server.ts's).
 */
import type { ServerUnaryCall } from "@grpc/grpc-js";
import type { CriContainers } from "./index.js";

type Call = ServerUnaryCall<Record<string, unknown>, unknown>;
type Handler = (call: Call) => Promise<unknown>;

function text(message: unknown, field: string): string {
  const value = (message as Record<string, unknown> | null | undefined)?.[field];
  return typeof value === "string" ? value : "";
}

function object(message: unknown, field: string): Record<string, unknown> | null {
  const value = (message as Record<string, unknown> | null | undefined)?.[field];
  return value !== null && typeof value === "object" ? (value as Record<string, unknown>) : null;
}

export function containerHandlers(store: CriContainers): Record<string, Handler> {
  const containers = (): CriContainers => store;
  // crictl's short ids name containers as full ids do (CriContainers.fullId).
  const id = (call: Call): string => store.fullId(text(call.request, "container_id"));
  return {
    "RuntimeService/CreateContainer": async (call) => ({
      container_id: await containers().create(
        text(call.request, "pod_sandbox_id"),
        object(call.request, "config"),
      ),
    }),
    "RuntimeService/StartContainer": async (call) => {
      await containers().start(id(call));
      return {};
    },
    "RuntimeService/StopContainer": async (call) => {
      const timeout = Number(call.request.timeout ?? 0);
      await containers().stop(id(call), Number.isFinite(timeout) ? timeout : 0);
      return {};
    },
    "RuntimeService/RemoveContainer": async (call) => {
      await containers().remove(id(call));
      return {};
    },
    "RuntimeService/ListContainers": async (call) => ({
      containers: await containers().list(object(call.request, "filter")),
    }),
    "RuntimeService/ContainerStatus": async (call) =>
      containers().status(id(call), call.request.verbose === true),
    "RuntimeService/UpdateContainerResources": async (call) => {
      await containers().updateResources(id(call), object(call.request, "linux"));
      return {};
    },
    "RuntimeService/ReopenContainerLog": async (call) => {
      await containers().reopenLog(id(call));
      return {};
    },
    "RuntimeService/ContainerStats": async (call) => ({
      stats: await containers().stats(id(call)),
    }),
    "RuntimeService/ListContainerStats": async (call) => ({
      stats: await containers().listStats(object(call.request, "filter")),
    }),
  };
}
