/** `skiff stats [-f] [NAME...]`: cgroup statistics of running containers, once or refreshed. */
import { setTimeout as sleep } from "node:timers/promises";
import type { Client } from "../../client/client.js";
import type { ContainerId } from "../../protocol/container.js";
import { EXIT_OK, type Command } from "../command.js";
import { table } from "../output.js";
import { resolveContainer } from "../resolve.js";
import { formatBytes } from "./containers.js";
import { withClient } from "./session.js";
import { settled } from "../../common/errors.js";

/** The wire shape of `process.statistics` (docs/cgroups.md), as far as this command reads it. */
interface Statistics {
  memory?: { usage: number; limit: number | null };
  cpu?: { usage_ns: number; throttled_periods: number };
  pids?: { current: number; limit: number | null };
  io?: { read_bytes: number; write_bytes: number };
}

export interface StatsSample {
  container: ContainerId;
  statistics: Statistics;
  /** performance.now() of the sample, for CPU percentages between two samples. */
  at: number;
}

/** One table row; CPU % needs the previous sample of the same container. */
export function statsRow(sample: StatsSample, previous: StatsSample | undefined): string[] {
  const s = sample.statistics;
  const cpu =
    previous?.statistics.cpu && s.cpu && sample.at > previous.at
      ? `${(((s.cpu.usage_ns - previous.statistics.cpu.usage_ns) / 1e6 / (sample.at - previous.at)) * 100).toFixed(1)}%`
      : "-";
  const memory = s.memory
    ? `${formatBytes(s.memory.usage)} / ${s.memory.limit === null ? "-" : formatBytes(s.memory.limit)}`
    : "-";
  const pids = s.pids ? `${s.pids.current}${s.pids.limit === null ? "" : ` / ${s.pids.limit}`}` : "-";
  const io = s.io ? `${formatBytes(s.io.read_bytes)} / ${formatBytes(s.io.write_bytes)}` : "-";
  return [sample.container, cpu, memory, pids, io, s.cpu ? String(s.cpu.throttled_periods) : "-"];
}

async function sample(client: Client, ids: ContainerId[] | undefined): Promise<StatsSample[]> {
  // One request for all containers (Skiff's `statistics`), not an `inspect` each.
  const at = performance.now();
  return (await client.statistics(ids)).map((s) => ({
    container: s.container,
    statistics: s.statistics as Statistics,
    at,
  }));
}

export const statsCommand: Command = {
  name: "stats",
  summary: "Show cgroup statistics of running containers (-f: refresh every second)",
  usage: "skiff stats [-f] [CONTAINER...]",
  options: { follow: { type: "boolean", short: "f" } },
  async run(ctx, { values, positionals }) {
    return withClient(
      ctx,
      async (client) => {
        // Names are resolved once, not again on every refresh of `-f`.
        const ids =
          positionals.length > 0
            ? await Promise.all(positionals.map((n) => resolveContainer(client, n)))
            : undefined;
        let previous = new Map<ContainerId, StatsSample>();
        for (;;) {
          const samples = await sample(client, ids);
          if (ctx.global.json) {
            for (const s of samples)
              ctx.out(JSON.stringify({ container: s.container, statistics: s.statistics }));
          } else {
            const rows = samples.map((s) => statsRow(s, previous.get(s.container)));
            table(
              ["CONTAINER", "CPU", "MEMORY / LIMIT", "PIDS", "IO READ / WRITE", "THROTTLED"],
              rows,
            ).forEach((l) => ctx.out(l));
          }
          if (values.follow !== true) return EXIT_OK;
          previous = new Map(samples.map((s) => [s.container, s]));
          await settled(sleep(1000, undefined, { signal: ctx.signal })); // the second, or an abort
          if (ctx.signal.aborted) return EXIT_OK;
          ctx.out("");
        }
      },
      { timeout: values.follow === true ? 0 : undefined },
    );
  },
};
