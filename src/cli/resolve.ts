/** Container arguments: `name:version`, or `name` when exactly one version is installed. */
import type { Client } from "../client/client.js";
import { containerIdProblem, nameOf, nameProblem } from "../protocol/container.js";
import { UsageError } from "./command.js";
import { RuntimeError } from "../client/errors.js";

export async function resolveContainer(client: Client, arg: string): Promise<string> {
  if (arg.includes(":")) {
    const problem = containerIdProblem(arg);
    if (problem) throw new UsageError(problem);
    return arg;
  }
  const problem = nameProblem(arg);
  if (problem) throw new UsageError(problem);
  const matches = (await client.list()).filter((id) => nameOf(id) === arg);
  if (matches.length === 1) return matches[0]!;
  if (matches.length === 0) throw new RuntimeError({ type: "invalid_container", container: `${arg}:0.0.0` });
  throw new UsageError(`${arg} is ambiguous: ${matches.join(", ")}; give name:version`);
}
