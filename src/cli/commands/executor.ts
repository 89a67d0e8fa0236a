/** `prepare` (a container readied for a fast start) and `health` (can the toolchain start containers?). */
import type { HealthInfo } from "../../protocol/messages.js";
import { EXIT_OK, EXIT_RUNTIME_ERROR, UsageError, type Command } from "../command.js";
import { responseJson } from "../output.js";
import { resolveContainer } from "../resolve.js";
import { parseContainerArgument } from "./power.js";
import { withClient } from "./session.js";

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

const prepare: Command = {
  name: "prepare",
  summary: "Mount a container and create it in the runtime so that its start is fast",
  usage: "skiff prepare CONTAINER",
  async run(ctx, parsed) {
    const arg = parseContainerArgument(parsed, "prepare");
    return withClient(ctx, async (client) => {
      const container = await resolveContainer(client, arg);
      await client.prepare(container);
      ctx.out(
        ctx.global.json
          ? responseJson({ type: "prepare", result: { type: "ok", container } })
          : `prepared ${container}`,
      );
      return EXIT_OK;
    });
  },
};

const health: Command = {
  name: "health",
  summary: "Check the toolchain (OCI runtime, monitor, init); exit code 1 and the problems when degraded",
  usage: "skiff health",
  async run(ctx, { positionals }) {
    if (positionals.length > 0) throw new UsageError("health takes no arguments");
    return withClient(ctx, async (client) => {
      const info = await client.health();
      if (ctx.global.json) ctx.out(responseJson({ type: "health", health: info }));
      else describeHealth(info).forEach((line) => ctx.out(line));
      return healthExitCode(info);
    });
  },
};

export const executorCommands: Command[] = [prepare, health];
