/** Package requests against the daemon: install, uninstall, mount, umount. */
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import type { ContainerResult } from "../../protocol/messages.js";
import { EXIT_OK, EXIT_RUNTIME_ERROR, UsageError, type Command, type CommandContext } from "../command.js";
import { printResult } from "../output.js";
import { resolveContainer } from "../resolve.js";
import { onContainer, withClient } from "./session.js";
import { byteProgress } from "../progress.js";
import { describeWireError } from "../../client/errors.js";
import { ifExists } from "../../common/errors.js";

/** Yields the file's chunks; a progress bar on stderr when it is a terminal (cli/progress.ts). */
async function* withProgress(path: string, size: number, ctx: CommandContext): AsyncGenerator<Buffer> {
  const bar = byteProgress("uploading", size, { json: ctx.global.json });
  let sent = 0;
  try {
    for await (const chunk of createReadStream(path, { highWaterMark: 256 * 1024 })) {
      sent += (chunk as Buffer).length;
      yield chunk as Buffer;
      bar.update(sent);
    }
  } finally {
    bar.stop();
  }
}

const install: Command = {
  name: "install",
  summary: "Install an NPK into a repository",
  usage: "skiff install NPK REPOSITORY",
  async run(ctx, { positionals }) {
    const [path, repository] = positionals;
    if (path === undefined || repository === undefined || positionals.length !== 2) {
      throw new UsageError("install takes an NPK file and a repository");
    }
    const info = await ifExists(stat(path));
    if (!info?.isFile()) throw new UsageError(`${path} is not a file`);
    // Uploads take as long as they take: no request deadline.
    return withClient(
      ctx,
      async (client) => {
        const container = await client.install(repository, info.size, withProgress(path, info.size, ctx));
        printResult(ctx, client, `installed ${container} into ${repository}`);
        return EXIT_OK;
      },
      { timeout: 0 },
    );
  },
};

const uninstall: Command = {
  name: "uninstall",
  summary: "Uninstall a container (--wipe also deletes its persistent data)",
  usage: "skiff uninstall CONTAINER [--wipe]",
  options: { wipe: { type: "boolean" } },
  async run(ctx, { positionals, values }) {
    if (positionals.length !== 1) throw new UsageError("uninstall takes one container");
    return onContainer(ctx, positionals[0]!, async (client, container) => {
      await client.uninstall(container, values.wipe === true);
      return `uninstalled ${container}`;
    });
  },
};

function mountCommand(kind: "mount" | "umount"): Command {
  return {
    name: kind,
    summary: kind === "mount" ? "Mount containers' images" : "Unmount containers' images",
    usage: `skiff ${kind} CONTAINER...`,
    async run(ctx, { positionals }) {
      if (positionals.length === 0) throw new UsageError(`${kind} takes one or more containers`);
      return withClient(ctx, async (client) => {
        const ids = await Promise.all(positionals.map((p) => resolveContainer(client, p)));
        const results: ContainerResult[] =
          kind === "mount" ? await client.mount(ids) : await client.umount(ids);
        const described = results.map((r) =>
          r.type === "ok"
            ? `${kind === "mount" ? "mounted" : "unmounted"} ${r.container}`
            : `${r.container}: ${describeWireError(r.error)}`,
        );
        printResult(ctx, client, described);
        return results.every((r) => r.type === "ok") ? EXIT_OK : EXIT_RUNTIME_ERROR;
      });
    },
  };
}

export const repositoryCommands: Command[] = [
  install,
  uninstall,
  mountCommand("mount"),
  mountCommand("umount"),
];
