/** Typed errors of the client library. Every error a caller can meet is one of these. */
import type { Request, WireError } from "../protocol/messages.js";

export class SkiffError extends Error {
  override name = "SkiffError";
}

/** The daemon answered with one of the console's error variants. */
export class RuntimeError extends SkiffError {
  override name = "RuntimeError";
  constructor(readonly error: WireError) {
    super(describeWireError(error));
  }
  get variant(): WireError["type"] {
    return this.error.type;
  }
}

/** The daemon refused the handshake: our protocol version is below its own. */
export class ProtocolVersionError extends SkiffError {
  override name = "ProtocolVersionError";
  constructor(readonly serverVersion: string) {
    super(`protocol version mismatch: the daemon speaks ${serverVersion}`);
  }
}

/** The connection lacks the permission for a request (or for notifications at connect). */
export class PermissionDeniedError extends SkiffError {
  override name = "PermissionDeniedError";
  constructor(readonly request?: Request) {
    super(request ? `permission denied for ${request.type}` : "permission denied");
  }
}

export class ConnectionClosedError extends SkiffError {
  override name = "ConnectionClosedError";
  constructor(detail = "connection closed") {
    super(detail);
  }
}

export class TimeoutError extends SkiffError {
  override name = "TimeoutError";
}

/** Notifications were dropped because this client read them too slowly. */
export class LaggedError extends SkiffError {
  override name = "LaggedError";
  constructor(readonly missed: number) {
    super(`missed ${missed} notifications: this client read them too slowly`);
  }
}

export function describeWireError(error: WireError): string {
  const { type, ...fields } = error;
  const detail = Object.entries(fields)
    .map(([k, v]) => `${k}: ${typeof v === "string" ? v : JSON.stringify(v)}`)
    .join(", ");
  return detail ? `${type.replaceAll("_", " ")} (${detail})` : type.replaceAll("_", " ");
}
