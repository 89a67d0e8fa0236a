/**
 * Console tokens (Northstar's `nstar token` / `nstar verify-token`): the shared part is given as
 * text and sent as its UTF-8 bytes, as nstar does. The daemon fills in who asks: the user of a
 * token is the connection that created it, the target of a verification the one verifying.
 */
import { nameProblem } from "../../protocol/container.js";
import { EXIT_OK, EXIT_RUNTIME_ERROR, UsageError, type Command } from "../command.js";
import { printResult } from "../output.js";
import { withClient } from "./session.js";

const TOKEN_BYTES = 40;

function checkName(what: string, name: string): void {
  const problem = nameProblem(name);
  if (problem) throw new UsageError(`${what}: ${problem}`);
}

const token: Command = {
  name: "token",
  summary: "Create a token for TARGET with a shared text (prints it in base64)",
  usage: "skiff token TARGET SHARED",
  async run(ctx, { positionals }) {
    if (positionals.length !== 2) throw new UsageError("token takes a target and a shared text");
    const [target, shared] = positionals as [string, string];
    checkName("target", target);
    return withClient(ctx, async (client) => {
      const response = await client.call(
        { type: "token_create", target, shared: Buffer.from(shared).toString("base64") },
        "token",
      );
      printResult(ctx, client, response.token);
      return EXIT_OK;
    });
  },
};

const verifyToken: Command = {
  name: "verify-token",
  summary: "Verify a token as USER's with a shared text: Ok (exit 0), Invalid, Expired or Future (exit 1)",
  usage: "skiff verify-token TOKEN USER SHARED",
  async run(ctx, { positionals }) {
    if (positionals.length !== 3)
      throw new UsageError("verify-token takes a token, a user and a shared text");
    const [tokenText, user, shared] = positionals as [string, string, string];
    const bytes = /^[A-Za-z0-9+/]*={0,2}$/.test(tokenText) ? Buffer.from(tokenText, "base64") : undefined;
    if (bytes?.length !== TOKEN_BYTES || bytes.toString("base64") !== tokenText) {
      throw new UsageError(`a token is ${TOKEN_BYTES} bytes in base64 (as \`skiff token\` prints it)`);
    }
    checkName("user", user);
    return withClient(ctx, async (client) => {
      const response = await client.call(
        { type: "token_verify", token: tokenText, user, shared: Buffer.from(shared).toString("base64") },
        "token_verification",
      );
      printResult(ctx, client, response.result);
      return response.result === "Ok" ? EXIT_OK : EXIT_RUNTIME_ERROR;
    });
  },
};

export const tokenCommands: Command[] = [token, verifyToken];
