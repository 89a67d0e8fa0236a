/** How an instance ended, in words for logs and start errors. */
import type { ExitStatus } from "../../protocol/messages.js";

export function isSuccess(status: ExitStatus): boolean {
  return status.type === "exit" && status.code === 0;
}

export function describeStatus(status: ExitStatus): string {
  const how = status.type === "exit" ? `exit code ${status.code}` : `signal ${status.signal}`;
  return `${how}${status.reason ? `, reason ${status.reason}` : ""}${status.oom ? ", oom" : ""}`;
}
