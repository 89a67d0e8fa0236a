/** Daemon-wide requests: shutdown and the notification stream. */
import { LaggedError } from "../../client/errors.js";
import { EXIT_OK, UsageError, type Command } from "../command.js";
import { describeNotification, notificationJson } from "../output.js";
import { daemonQuery, withClient } from "./session.js";

const shutdown = daemonQuery({ name: "shutdown", summary: "Shut the daemon down" }, async (client) => {
  await client.shutdown();
  return "shutdown requested";
});

const notifications: Command = {
  name: "notifications",
  aliases: ["events"],
  summary: "Print notifications as they arrive",
  usage: "skiff notifications [-n COUNT]",
  options: { number: { type: "string", short: "n" } },
  async run(ctx, { values }) {
    const count = values.number === undefined ? Infinity : Number(values.number);
    if (!(count > 0) || (count !== Infinity && !Number.isInteger(count))) {
      throw new UsageError("-n takes a positive whole number");
    }
    // Waiting for notifications has no deadline; only connecting does.
    return withClient(
      ctx,
      async (client) => {
        let seen = 0;
        for (;;) {
          try {
            for await (const n of client.notifications()) {
              ctx.out(ctx.global.json ? notificationJson(n) : describeNotification(n));
              if (++seen >= count) return EXIT_OK;
            }
            return EXIT_OK;
          } catch (e) {
            if (!(e instanceof LaggedError)) throw e;
            ctx.err(`skiff: ${e.message}`);
          }
        }
      },
      { notifications: true, timeout: 0 },
    );
  },
};

export const daemonCommands: Command[] = [shutdown, notifications];
