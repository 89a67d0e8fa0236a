/** `skiff checkpoint` and `skiff restore`: CRIU snapshots of a running container (docs/containers.md). */
import { EXIT_OK, type Command } from "../command.js";
import { responseJson } from "../output.js";
import { resolveContainer } from "../resolve.js";
import { parseContainerArgument } from "./power.js";
import { withClient } from "./session.js";

const checkpoint: Command = {
  name: "checkpoint",
  summary: "Save a running container's processes with CRIU and stop it (see restore)",
  usage: "skiff checkpoint CONTAINER",
  async run(ctx, parsed) {
    const arg = parseContainerArgument(parsed, "checkpoint");
    return withClient(ctx, async (client) => {
      const container = await resolveContainer(client, arg);
      await client.checkpoint(container);
      ctx.out(
        ctx.global.json
          ? responseJson({ type: "checkpoint", result: { type: "ok", container } })
          : `checkpointed ${container}`,
      );
      return EXIT_OK;
    });
  },
};

const restore: Command = {
  name: "restore",
  summary: "Start a checkpointed container from its image, where it left off",
  usage: "skiff restore CONTAINER",
  async run(ctx, parsed) {
    const arg = parseContainerArgument(parsed, "restore");
    return withClient(ctx, async (client) => {
      const container = await resolveContainer(client, arg);
      await client.restore(container);
      ctx.out(
        ctx.global.json
          ? responseJson({ type: "restore", result: { type: "ok", container } })
          : `restored ${container}`,
      );
      return EXIT_OK;
    });
  },
};

export const checkpointCommands: Command[] = [checkpoint, restore];
