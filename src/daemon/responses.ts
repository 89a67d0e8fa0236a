/**
 * The one place that turns outcomes into console responses. Transitions, executors and the
 * console session report what happened (ok, an error, an inspect view and the statistics read
 * for it, the log lines read) and these functions give it its wire shape. A leaf module: it
 * imports only the wire model and the statistics' type.
 */
import type { ContainerId } from "../protocol/container.js";
import type {
  ContainerData,
  ContainerResult,
  ExitStatus,
  PowerInfo,
  ProcessInfo,
  Request,
  Response,
  WireError,
} from "../protocol/messages.js";
import type { ProcessStatistics } from "./cgroups/process-statistics.js";

type ResultOf<K extends Response["type"]> =
  Extract<Response, { type: K }> extends { result: infer R } ? R : never;

/** The responses whose result is exactly a plain `ok`/`error` naming the container. */
export type ContainerResultKind = {
  [K in Response["type"]]: [ResultOf<K>] extends [ContainerResult]
    ? [ContainerResult] extends [ResultOf<K>]
      ? K
      : never
    : never;
}[Response["type"]];

type ContainerErrorResult = { type: "error"; container: ContainerId; error: WireError };

/** Every response about one container: each has this same error result. */
export type ContainerResponseKind = {
  [K in Response["type"]]: ContainerErrorResult extends ResultOf<K>
    ? Extract<ResultOf<K>, { type: "error" }> extends { container: ContainerId }
      ? K
      : never
    : never;
}[Response["type"]];

/** `ok` (no error) or `error` for `container`. */
export function containerResponse(
  kind: ContainerResultKind,
  container: ContainerId,
  error?: WireError,
): Response {
  const result: ContainerResult = error ? { type: "error", container, error } : { type: "ok", container };
  return { type: kind, result };
}

/** The error result of any response about one container. */
export function containerError(
  kind: ContainerResponseKind,
  container: ContainerId,
  error: WireError,
): Response {
  return { type: kind, result: { type: "error", container, error } };
}

/** The request could not be served at all (Skiff's `error` response). */
export function requestError(error: WireError): Response {
  return { type: "error", error };
}

export function permissionDenied(request: Request): Response {
  return { type: "permission_denied", request };
}

/**
 * What the state knows of a container for `inspect`. A running one's statistics are read from
 * its cgroup by the container executor and joined here (`inspectResponse`).
 */
export interface InspectView {
  container: ContainerId;
  data: Omit<ContainerData, "process">;
  process: Omit<ProcessInfo, "statistics"> | null;
}

export function inspectResponse(view: InspectView, statistics?: ProcessStatistics): Response {
  const process = view.process && { ...view.process, statistics: { ...statistics } };
  return {
    type: "inspect",
    result: { type: "ok", container: view.container, data: { ...view.data, process } },
  };
}

export function logsResponse(container: ContainerId, lines: string[], offset: number): Response {
  return { type: "logs", result: { type: "ok", container, lines, offset } };
}

/** An install: the installed container, or why not (an install result names no container). */
export function installResponse(outcome: { container: ContainerId } | { error: WireError }): Response {
  return {
    type: "install",
    result:
      "error" in outcome
        ? { type: "error", error: outcome.error }
        : { type: "ok", container: outcome.container },
  };
}

/** A `stop` that ended the container with `status`. */
export function stopResponse(container: ContainerId, status: ExitStatus): Response {
  return { type: "stop", result: { type: "ok", container, status } };
}

/** A completed suspend: nanoseconds frozen and what woke the container. */
export function suspendResponse(
  container: ContainerId,
  suspendTimeNs: number,
  resumeReason: string,
): Response {
  return {
    type: "suspend",
    result: { type: "ok", container, suspend_time: suspendTimeNs, resume_reason: resumeReason },
  };
}

export function powerResponse(container: ContainerId, power: PowerInfo): Response {
  return { type: "power", result: { type: "ok", container, power } };
}
