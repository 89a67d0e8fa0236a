/** Finds an executable on PATH, so the monitor gets an absolute runtime path. */
import { access, constants } from "node:fs/promises";
import { delimiter, join } from "node:path";

export async function findExecutable(name: string): Promise<string> {
  for (const dir of (
    process.env.PATH ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
  ).split(delimiter)) {
    const candidate = join(dir, name);
    if (
      await access(candidate, constants.X_OK).then(
        () => true,
        () => false,
      )
    )
      return candidate;
  }
  throw new Error(`${name} not found on PATH`);
}
