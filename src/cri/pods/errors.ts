/**
 * The one error type of the pod store: a refusal or failure with the gRPC status the CRI endpoint
 * answers it with (server.ts maps it as it is). Request problems are INVALID_ARGUMENT, host
 * conditions (a host port in use, a mode Skiff cannot give) FAILED_PRECONDITION, a failed tool or
 * kernel call INTERNAL.
 */
import { status as GrpcStatus } from "@grpc/grpc-js";

export class PodError extends Error {
  override name = "PodError";
  constructor(
    readonly code: GrpcStatus,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export const invalid = (message: string): PodError => new PodError(GrpcStatus.INVALID_ARGUMENT, message);
export const precondition = (message: string): PodError =>
  new PodError(GrpcStatus.FAILED_PRECONDITION, message);
export const notFound = (message: string): PodError => new PodError(GrpcStatus.NOT_FOUND, message);
