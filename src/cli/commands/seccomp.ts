/** `skiff seccomp [FILE]`: a manifest `seccomp` allow list from an strace log (like `nstar seccomp`). */
import { createReadStream } from "node:fs";
import { compileSeccomp } from "../../daemon/oci/seccomp.js";
import { EXIT_OK, EXIT_RUNTIME_ERROR, UsageError, type Command } from "../command.js";
import { scanStrace, seccompYaml } from "./strace.js";
import { messageOf } from "../../common/errors.js";

/** What Northstar's default profile already allows on `arch` (x64, arm64), without capabilities. */
export function defaultProfileSyscalls(arch: string): ReadonlySet<string> {
  const compiled = compileSeccomp({ profile: "default" }, [], arch);
  const unconditional = compiled?.syscalls.find((rule) => rule.action === "SCMP_ACT_ALLOW" && !rule.args);
  return new Set(unconditional?.names ?? []);
}

export const seccompCommand: Command = {
  name: "seccomp",
  summary: "Print a manifest seccomp allow list from an `strace -f` log (FILE or stdin)",
  usage: "skiff seccomp [FILE|-] [--default-profile] [--arch x64|arm64] [--skip-unknown]",
  options: {
    "default-profile": { type: "boolean" },
    arch: { type: "string" },
    "skip-unknown": { type: "boolean" },
  },
  async run(ctx, { positionals, values }) {
    if (positionals.length > 1) throw new UsageError("seccomp takes at most one strace log");
    const file = positionals[0];
    const arch = typeof values.arch === "string" ? values.arch : process.arch;
    if (arch !== "x64" && arch !== "arm64") throw new UsageError(`--arch takes x64 or arm64, not ${arch}`);
    const withProfile = values["default-profile"] === true;

    const source =
      file === undefined || file === "-"
        ? process.stdin.setEncoding("utf8")
        : createReadStream(file, { encoding: "utf8" });
    let summary;
    try {
      summary = await scanStrace(source);
    } catch (e) {
      ctx.err(`skiff: cannot read ${file ?? "stdin"}: ${messageOf(e)}`);
      return EXIT_RUNTIME_ERROR;
    }
    if (summary.unknown.length > 0) {
      for (const { name, line } of summary.unknown) {
        ctx.err(`${file ?? "stdin"}:${line}: ${JSON.stringify(name)} is not a Linux system call`);
      }
      if (summary.unknownTruncated) ctx.err(`(more unknown names were left out)`);
      if (values["skip-unknown"] !== true) {
        ctx.err("skiff: refusing an allow list with unknown names (--skip-unknown leaves them out)");
        return EXIT_RUNTIME_ERROR;
      }
    }
    if (summary.syscalls.length === 0) {
      ctx.err(`skiff: no system calls in ${file ?? "stdin"} (is it an strace log?)`);
      return EXIT_RUNTIME_ERROR;
    }
    // With Northstar's default profile, list only what the profile does not already allow.
    const base = withProfile ? defaultProfileSyscalls(arch) : new Set<string>();
    const allow = summary.syscalls.filter((name) => !base.has(name));
    seccompYaml(allow, withProfile ? "default" : undefined).forEach((line) => ctx.out(line));
    return EXIT_OK;
  },
};
