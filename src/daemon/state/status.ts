/** How an instance ended, in words for logs and start errors (protocol/exit-status.ts renders it). */
import type { ExitStatus } from "../../protocol/messages.js";
import { describeExitStatus } from "../../protocol/exit-status.js";

export function isSuccess(status: ExitStatus): boolean {
  return status.type === "exit" && status.code === 0;
}

export const describeStatus = (status: ExitStatus): string => describeExitStatus(status);
