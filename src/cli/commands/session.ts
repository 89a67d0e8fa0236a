/** Runs a command body with a connected client, closing it afterwards. */
import { connect, type Client } from "../../client/client.js";
import type { CommandContext } from "../command.js";

export async function withClient<T>(
  ctx: CommandContext,
  body: (client: Client) => Promise<T>,
  options: { notifications?: boolean; timeout?: number } = {},
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
