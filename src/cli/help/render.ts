/**
 * Manual pages of `skiff` commands: `skiff help COMMAND` and `skiff COMMAND --help` print the same
 * page, rendered here from the command itself (its name, summary, usage and option spec) and its
 * page in pages.ts (description, option texts, operands, exit status, examples). One source: a
 * command's flags are listed from its parse spec, so the page cannot name a flag the parser lacks.
 */
import { GLOBAL_OPTIONS, type Command, type OptionSpec } from "../command.js";

export interface HelpPage {
  /** Paragraphs of the DESCRIPTION section. */
  description: string[];
  /** Positional operands: [name as in the usage, meaning]. */
  operands?: [string, string][];
  /**
   * One entry per option of the command's spec (long name → its argument's placeholder, if it
   * takes one, and its meaning). A global option a command reads itself (`stop -t`) may be here.
   */
  options?: Record<string, { arg?: string; text: string }>;
  /** Exit statuses beyond the standard 0, 1, 2 meanings, or replacing them: [status, meaning]. */
  exitStatus?: [string, string][];
  /** [command line, what it does]; at least one. */
  examples: [string, string][];
  /** Related commands or documents. */
  seeAlso?: string[];
}

const GLOBAL_TEXTS: Record<string, { arg?: string; text: string }> = {
  url: {
    arg: "URL",
    text: "The console to talk to: unix://PATH or tcp://HOST:PORT (default: $SKIFF_URL, else unix:///run/skiff/skiff.sock).",
  },
  json: { text: "Print the daemon's answers as JSON lines instead of text; no progress output." },
  timeout: { arg: "SECONDS", text: "Deadline of each request (default 10)." },
  help: { text: "Print this page and exit 0." },
};

export const STANDARD_EXIT_STATUS: [string, string][] = [
  ["0", "Success."],
  ["1", "The request failed: the daemon refused it or could not be reached, or the work failed."],
  ["2", "Usage error: unknown option, missing or malformed argument."],
];

const WIDTH = 80;
const INDENT = "       ";

function wrap(text: string, indent: string, width = WIDTH): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/).filter((w) => w.length > 0)) {
    if (line.length > 0 && indent.length + line.length + 1 + word.length > width) {
      lines.push(indent + line);
      line = word;
    } else line = line.length > 0 ? `${line} ${word}` : word;
  }
  if (line.length > 0) lines.push(indent + line);
  return lines;
}

function optionHeading(name: string, spec: OptionSpec[string], arg: string | undefined): string {
  const long = `--${name}${spec.type === "string" ? ` ${arg ?? "VALUE"}` : ""}`;
  const heading = spec.short ? `-${spec.short}, ${long}` : long;
  return spec.multiple ? `${heading} (may be repeated)` : heading;
}

/** The whole page of `command` as text lines joined by newlines (no trailing newline). */
export function renderHelp(command: Command, page: HelpPage): string {
  const out: string[] = [];
  const section = (title: string): void => {
    if (out.length > 0) out.push("");
    out.push(title);
  };
  section("NAME");
  out.push(...wrap(`skiff ${command.name} - ${command.summary}`, INDENT));
  if (command.aliases?.length)
    out.push(...wrap(`Also: ${command.aliases.map((a) => `skiff ${a}`).join(", ")}.`, INDENT));
  section("SYNOPSIS");
  for (const usage of command.usage.split("\n")) out.push(INDENT + usage.trim());
  section("DESCRIPTION");
  page.description.forEach((paragraph, i) => {
    if (i > 0) out.push("");
    out.push(...wrap(paragraph, INDENT));
  });
  if (page.operands?.length) {
    section("OPERANDS");
    for (const [name, text] of page.operands) {
      out.push(INDENT + name, ...wrap(text, `${INDENT}    `));
    }
  }
  const own = command.options ?? {};
  const documented = page.options ?? {};
  const ownNames = Object.keys({ ...own, ...documented });
  if (ownNames.length > 0) {
    section("OPTIONS");
    for (const name of ownNames) {
      const spec = own[name] ?? GLOBAL_OPTIONS[name]!;
      const doc = documented[name];
      out.push(INDENT + optionHeading(name, spec, doc?.arg), ...wrap(doc?.text ?? "", `${INDENT}    `));
    }
  }
  section("GLOBAL OPTIONS");
  for (const [name, spec] of Object.entries(GLOBAL_OPTIONS)) {
    if (name in own || name in documented) continue;
    const doc = GLOBAL_TEXTS[name]!;
    out.push(INDENT + optionHeading(name, spec, doc.arg), ...wrap(doc.text, `${INDENT}    `));
  }
  section("EXIT STATUS");
  const statuses = new Map(STANDARD_EXIT_STATUS);
  for (const [status, text] of page.exitStatus ?? []) statuses.set(status, text);
  for (const [status, text] of statuses) {
    const lines = wrap(text, `${INDENT}    `);
    out.push(`${INDENT}${status.padEnd(4)}${lines[0]!.trimStart()}`, ...lines.slice(1));
  }
  section("EXAMPLES");
  page.examples.forEach(([line, text], i) => {
    if (i > 0) out.push("");
    out.push(`${INDENT}$ ${line}`, ...wrap(text, `${INDENT}    `));
  });
  if (page.seeAlso?.length) {
    section("SEE ALSO");
    out.push(...wrap(page.seeAlso.join(", "), INDENT));
  }
  return out.join("\n");
}
