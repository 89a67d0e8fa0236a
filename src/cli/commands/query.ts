/** Read-only requests: list, inspect, repositories, ident. */
import { EXIT_OK, UsageError, type Command } from "../command.js";
import { printResponse, table } from "../output.js";
import { daemonQuery, onContainer, withClient } from "./session.js";
import { RuntimeError } from "../../client/errors.js";
import { nameOf, versionOf } from "../../protocol/container.js";
import { ifExists } from "../../common/errors.js";

const list: Command = {
  name: "list",
  aliases: ["ls"],
  summary: "List installed containers",
  usage: "skiff list",
  async run(ctx) {
    return withClient(ctx, async (client) => {
      const ids = await client.list();
      // The human table takes an inspect per container; `--json` is the list response alone.
      if (ctx.global.json) {
        printResponse(ctx, client);
        return EXIT_OK;
      }
      const rows: string[][] = [];
      for (const id of ids) {
        let data;
        try {
          data = await client.inspect(id);
        } catch (e) {
          // Uninstalled between list and inspect: not an error of this command.
          if (e instanceof RuntimeError) continue;
          throw e;
        }
        rows.push([
          nameOf(id),
          versionOf(id),
          data.repository,
          data.mounted ? "yes" : "no",
          data.state ?? "-",
          data.process ? String(data.process.pid) : "-",
        ]);
      }
      table(["NAME", "VERSION", "REPOSITORY", "MOUNTED", "STATE", "PID"], rows).forEach((l) => ctx.out(l));
      return EXIT_OK;
    });
  },
};

/** True when `arg` names an NPK file (ends in .npk, or is an existing regular file). */
export async function isNpkArgument(arg: string): Promise<boolean> {
  if (arg.endsWith(".npk")) return true;
  // node:fs/promises loads ~15 of node's internal modules: not for `skiff ls` (docs/footprint.md).
  const { stat } = await import("node:fs/promises");
  return (await ifExists(stat(arg)))?.isFile() ?? false;
}

const inspect: Command = {
  name: "inspect",
  summary: "Show a container's manifest, repository, mount and process",
  usage: "skiff inspect CONTAINER | skiff inspect NPK [--short]",
  // The options of `inspect NPK` (package.ts), which is imported only for a package file: the pack
  // tooling stays unloaded for a container (test/unit/cli/registry.test.ts checks the two agree).
  options: { short: { type: "boolean", short: "s" } },
  async run(ctx, parsed) {
    const { positionals } = parsed;
    if (positionals.length !== 1) throw new UsageError("inspect takes one container");
    // A package file is inspected locally, without a daemon.
    if (await isNpkArgument(positionals[0]!)) {
      const { inspectNpkCommand } = await import("./package.js");
      return inspectNpkCommand.run(ctx, parsed);
    }
    return onContainer(ctx, positionals[0]!, async (client, container) => {
      const data = await client.inspect(container);
      return JSON.stringify({ container, ...data }, null, 2);
    });
  },
};

const repositories = daemonQuery(
  { name: "repositories", aliases: ["repos"], summary: "List repositories" },
  async (client) =>
    table(
      ["REPOSITORY"],
      (await client.repositories()).map((id) => [id]),
    ),
);

const ident = daemonQuery({ name: "ident", summary: "Show this connection's identity" }, (client) =>
  client.ident(),
);

export const queryCommands: Command[] = [list, inspect, repositories, ident];
