/** Runs a command body with a connected client, closing it afterwards; the shape of container commands. */
import { connect, type Client } from "../../client/client.js";
import type { ContainerId } from "../../protocol/container.js";
import { EXIT_OK, UsageError, type Command, type CommandContext, type ParsedCommand } from "../command.js";
import { printResult, type Human } from "../output.js";
import { resolveContainer } from "../resolve.js";

/** The one positional of `skiff pause|resume|power|prepare|checkpoint|restore NAME`. */
export function parseContainerArgument({ positionals }: ParsedCommand, command: string): string {
  if (positionals.length !== 1) throw new UsageError(`${command} takes one container`);
  return positionals[0]!;
}

export interface ClientOptions {
  notifications?: boolean;
  /** The request deadline in ms (0: none); default `-t`. */
  timeout?: number;
}

export async function withClient<T>(
  ctx: CommandContext,
  body: (client: Client) => Promise<T>,
  options: ClientOptions = {},
): Promise<T> {
  const client = await connect(ctx.global.url, {
    notifications: options.notifications ?? false,
    timeout: options.timeout ?? ctx.global.timeoutMs,
    signal: ctx.signal,
  });
  try {
    return await body(client);
  } finally {
    client.close();
  }
}

/**
 * Most container commands: resolve `arg` (`name` or `name:version`), `act` on the container and
 * print the outcome through the one output path (`--json`: the daemon's response).
 */
export function onContainer(
  ctx: CommandContext,
  arg: string,
  act: (client: Client, container: ContainerId) => Promise<Human>,
  options: ClientOptions = {},
): Promise<number> {
  return withClient(
    ctx,
    async (client) => {
      const container = await resolveContainer(client, arg);
      printResult(ctx, client, await act(client, container));
      return EXIT_OK;
    },
    options,
  );
}

/** The requests that do one thing to one container: command, client method and request share the name. */
export type ContainerVerb = "pause" | "resume" | "prepare" | "checkpoint" | "restore";

/**
 * A command that does one thing to one container and says it did: `skiff NAME CONTAINER`.
 * `done` is the past tense for the human line, e.g. `paused`.
 */
export function containerVerb(name: ContainerVerb, summary: string, done: string): Command {
  return {
    name,
    summary,
    usage: `skiff ${name} CONTAINER`,
    run: (ctx, parsed) =>
      onContainer(ctx, parseContainerArgument(parsed, name), async (client, container) => {
        await client[name](container);
        return `${done} ${container}`;
      }),
  };
}

/** A command that asks the daemon one thing (no container) and prints the answer. */
export function daemonQuery(
  spec: Pick<Command, "name" | "aliases" | "summary">,
  act: (client: Client) => Promise<Human>,
): Command {
  return {
    ...spec,
    usage: `skiff ${spec.name}`,
    run: (ctx) =>
      withClient(ctx, async (client) => {
        printResult(ctx, client, await act(client));
        return EXIT_OK;
      }),
  };
}
