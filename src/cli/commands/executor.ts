/** `prepare` (a container readied for a fast start) and `health` (can the toolchain start containers?). */
import type { HealthInfo } from "../../protocol/messages.js";
import { EXIT_OK, EXIT_RUNTIME_ERROR, UsageError, type Command } from "../command.js";
import { printResult } from "../output.js";
import { containerVerb, withClient } from "./session.js";

/** `ok`, or `degraded` followed by one indented line per problem. */
export function describeHealth(health: HealthInfo): string[] {
  const lines = health.status === "ok" ? ["ok"] : ["degraded", ...health.problems.map((p) => `  - ${p}`)];
  const c = health.checkpoint;
  if (c)
    lines.push(
      c.supported ? "checkpoint: supported" : `checkpoint: unsupported (${c.reason ?? "no reason given"})`,
    );
  return lines;
}

/** 0 when the toolchain is healthy, 1 when degraded, so scripts and probes can test it. */
export function healthExitCode(health: HealthInfo): number {
  return health.status === "ok" ? EXIT_OK : EXIT_RUNTIME_ERROR;
}

const prepare = containerVerb(
  "prepare",
  "Mount a container and create it in the runtime so that its start is fast",
  "prepared",
);

const health: Command = {
  name: "health",
  summary: "Check the toolchain (OCI runtime, monitor, init); exit code 1 and the problems when degraded",
  usage: "skiff health",
  async run(ctx, { positionals }) {
    if (positionals.length > 0) throw new UsageError("health takes no arguments");
    return withClient(ctx, async (client) => {
      const info = await client.health();
      printResult(ctx, client, describeHealth(info));
      return healthExitCode(info);
    });
  },
};

export const executorCommands: Command[] = [prepare, health];
