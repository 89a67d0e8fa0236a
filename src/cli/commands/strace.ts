/**
 * Reading `strace -f` logs for `skiff seccomp` (like `nstar seccomp`): which system calls a
 * program made. Pure and incremental: feed it lines (from a file or stdin, as they come) and
 * ask for the names at the end.
 *
 * A call line is `[pid prefix] [timestamps] name(args...) = result`, where the pid prefix is
 * `[pid  123] ` (strace -f on stderr) or `123 ` (strace -f -o FILE), and timestamps are those of
 * -t, -tt, -ttt or -r. Everything else is ignored: `<... name resumed>` (the call was counted
 * at its `<unfinished ...>` line), signals (`--- SIGCHLD ...`), exits (`+++ exited ...`),
 * strace's own messages and stack traces.
 *
 * Limits: only the first MAX_SCANNED_LINE characters of a line are looked at (the name comes
 * first), and at most MAX_UNKNOWN distinct unknown names are kept, so a hostile or wrong file
 * cannot grow memory without bound.
 */
import { SYSCALL_NAMES } from "./syscall-names.js";

export const MAX_SCANNED_LINE = 4096;
export const MAX_UNKNOWN = 100;

const CALL =
  /^\s*(?:\[pid\s+\d+\]\s*|\d+\s+)?(?:(?:\d+:\d+:\d+|\d+)(?:\.\d+)?\s+)*([A-Za-z_][A-Za-z0-9_]*)\(/;

export interface StraceSummary {
  /** Known system calls seen, sorted, each once. */
  syscalls: string[];
  /** Names that are not Linux system calls, with the first line (1-based) each was seen on. */
  unknown: { name: string; line: number }[];
  /** More distinct unknown names were seen than are listed. */
  unknownTruncated: boolean;
  /** Lines that were system calls (known or not). */
  calls: number;
}

export class StraceScanner {
  private readonly seen = new Set<string>();
  private readonly unknown = new Map<string, number>();
  private unknownTruncated = false;
  private lineNumber = 0;
  private calls = 0;

  /** One line of the log, without its newline. */
  feed(line: string): void {
    this.lineNumber++;
    const match = CALL.exec(line.length > MAX_SCANNED_LINE ? line.slice(0, MAX_SCANNED_LINE) : line);
    if (match === null) return;
    const name = match[1]!;
    this.calls++;
    if (SYSCALL_NAMES.has(name)) this.seen.add(name);
    else if (!this.unknown.has(name)) {
      if (this.unknown.size < MAX_UNKNOWN) this.unknown.set(name, this.lineNumber);
      else this.unknownTruncated = true;
    }
  }

  summary(): StraceSummary {
    return {
      syscalls: [...this.seen].sort(),
      unknown: [...this.unknown].map(([name, line]) => ({ name, line })),
      unknownTruncated: this.unknownTruncated,
      calls: this.calls,
    };
  }
}

/**
 * Splits a byte stream into lines for the scanner without holding more than MAX_SCANNED_LINE
 * characters of any line (the rest of a long line is skipped).
 */
export async function scanStrace(source: AsyncIterable<Buffer | string>): Promise<StraceSummary> {
  const scanner = new StraceScanner();
  let pending = "";
  let skipping = false;
  for await (const chunk of source) {
    const text = typeof chunk === "string" ? chunk : chunk.toString("utf8");
    let start = 0;
    for (;;) {
      const nl = text.indexOf("\n", start);
      const piece = text.slice(start, nl < 0 ? text.length : nl);
      if (!skipping) {
        pending += piece.slice(0, MAX_SCANNED_LINE - pending.length);
        if (pending.length >= MAX_SCANNED_LINE && nl < 0) skipping = true;
      }
      if (nl < 0) break;
      scanner.feed(pending);
      pending = "";
      skipping = false;
      start = nl + 1;
    }
  }
  if (pending.length > 0) scanner.feed(pending);
  return scanner.summary();
}

/** The manifest fragment: `seccomp:` with `profile: default` if asked, and `allow:` sorted. */
export function seccompYaml(syscalls: readonly string[], profile?: "default"): string[] {
  const lines = ["seccomp:"];
  if (profile !== undefined) lines.push(`  profile: ${profile}`);
  if (syscalls.length > 0) {
    lines.push("  allow:");
    for (const name of syscalls) lines.push(`    ${name}: any`);
  }
  return lines;
}
