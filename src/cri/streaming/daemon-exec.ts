/**
 * The daemon's exec machinery (src/daemon/exec/: ExecExecutor with skiff-exec and
 * `<runtime> exec`) as the streaming server's ExecStarter.
 */
import type { ExecExecutor } from "../../daemon/exec/executor.js";
import { ExecOpenError } from "../../daemon/exec/executor.js";
import { ExecRefusedError, type ExecStarter } from "./backend.js";

export function execStarterOf(executor: ExecExecutor): ExecStarter {
  return async (request) => {
    let opened;
    try {
      opened = await executor.open(request);
    } catch (e) {
      if (!(e instanceof ExecOpenError)) throw e;
      const { error } = e;
      switch (error.type) {
        case "invalid_container":
          throw new ExecRefusedError(`container ${request.container} not found`, "not_found");
        case "stop_container_not_started":
          throw new ExecRefusedError(`container ${request.container} is not running`, "not_running");
        case "invalid_arguments":
          throw new ExecRefusedError(e.message, "invalid");
        default:
          throw new ExecRefusedError(e.message, e.exhausted ? "exhausted" : "failed");
      }
    }
    const { helper, pid, release } = opened;
    let closed = false;
    return {
      pid,
      stdin: helper.stdin,
      stdout: helper.stdout,
      stderr: helper.stderr,
      ended: helper.ended,
      resize: (rows, cols) => helper.resize(rows, cols),
      signal: (signal) => helper.signal(signal),
      close: () => {
        if (closed) return;
        closed = true;
        helper.abandon();
        // The slot is free once the helper is gone (it kills the process first).
        void helper.ended.catch(() => undefined).finally(release);
      },
    };
  };
}
