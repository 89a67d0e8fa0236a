/** `skiff checkpoint` and `skiff restore`: CRIU snapshots of a running container (docs/containers.md). */
import type { Command } from "../command.js";
import { containerVerb } from "./session.js";

export const checkpointCommands: Command[] = [
  containerVerb(
    "checkpoint",
    "Save a running container's processes with CRIU and stop it (see restore)",
    "checkpointed",
  ),
  containerVerb("restore", "Start a checkpointed container from its image, where it left off", "restored"),
];
