/**
 * `install` over the console (Northstar's way: the request line carries repository and size,
 * then exactly `size` raw bytes follow). Receives and verifies the upload outside the event loop;
 * the verified package goes to the state owner as an `upload_received` job, whose transition
 * answers the request. Refusals keep the stream in step (or close it when the payload is too big
 * to skip).
 */
import type { Logger } from "pino";
import { PathEscapeError } from "../../common/paths.js";
import { NpkError } from "../../npk/errors.js";
import type { Request, Response } from "../../protocol/messages.js";
import type { RequestIo } from "../console/session.js";
import type { JobResult } from "../events/types.js";
import type { Repository } from "./repository.js";
import { UploadRejected, receiveUpload } from "./upload.js";

export interface InstallContext {
  repositories: ReadonlyMap<string, Repository>;
  /** Bytes the repository's installed packages take (for `capacity_size`). */
  usedBytes: (repository: string) => number;
  report: (result: JobResult) => Promise<void>;
  log: Logger;
}

export async function receiveInstall(
  request: Extract<Request, { type: "install" }>,
  io: RequestIo,
  o: InstallContext,
): Promise<Response> {
  const fail = (error: Extract<Response, { type: "install" }>["result"] & { type: "error" }): Response => ({
    type: "install",
    result: error,
  });
  const repo = o.repositories.get(request.repository);
  const refusal =
    repo === undefined
      ? `unknown repository ${request.repository}`
      : repo.config.readOnly
        ? `repository ${request.repository} is read-only`
        : undefined;
  if (refusal !== undefined) {
    o.log.warn(`install refused: ${refusal}`);
    if (request.size > io.maxInstallSize) io.closeAfterReply();
    else await io.reader.skipBytes(request.size, io.signal);
    return fail({ type: "error", error: { type: "invalid_repository", repository: request.repository } });
  }
  const usedBytes = o.usedBytes(repo!.id);
  let received;
  try {
    received = await receiveUpload({
      repository: repo!,
      size: request.size,
      maxInstallSize: io.maxInstallSize,
      capacityLeft: (repo!.config.capacitySize ?? Infinity) - usedBytes,
      reader: io.reader,
      signal: io.signal,
    });
  } catch (e) {
    if (e instanceof UploadRejected) {
      if (e.closeConnection) io.closeAfterReply();
      return fail({ type: "error", error: { type: "configuration", context: e.message } });
    }
    if (e instanceof NpkError) {
      o.log.warn({ repository: repo!.id, kind: e.kind }, `install refused: ${e.message}`);
      return fail({
        type: "error",
        error: { type: "invalid_arguments", cause: `invalid package: ${e.kind}: ${e.message}` },
      });
    }
    if (e instanceof PathEscapeError) {
      o.log.warn({ repository: repo!.id }, `install refused: ${e.message}`);
      return fail({
        type: "error",
        error: { type: "invalid_arguments", cause: `invalid package: its file name ${e.reason}` },
      });
    }
    throw e;
  }
  return new Promise<Response>((resolve) => {
    void o.report({
      type: "upload_received",
      pkg: received.pkg,
      tempPath: received.tempPath,
      reply: resolve,
    });
  });
}
