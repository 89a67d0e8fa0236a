/**
 * The `skiff` command's argument parser: node:util's `parseArgs` with `strict: true` and
 * `allowPositionals: true`, the one configuration the CLI uses, reproduced so that a command does
 * not load node:util (~12 of node's internal modules on every command, docs/footprint.md).
 * Same tokens, same values (a null-prototype object, `multiple` options as arrays), same errors
 * (`code` ERR_PARSE_ARGS_*, same message, same class); test/unit/cli/args.test.ts compares the two
 * on the CLI's own option tables and on generated argument lists.
 */

export interface OptionSpecEntry {
  type: "string" | "boolean";
  /** One character: `-x`. */
  short?: string;
  /** Every occurrence is kept, in an array. */
  multiple?: boolean;
}

export type OptionSpec = Record<string, OptionSpecEntry>;

export type OptionValues = Record<string, string | boolean | (string | boolean)[] | undefined>;

export interface ParsedArguments {
  values: OptionValues;
  positionals: string[];
}

type ParseErrorCode = "ERR_PARSE_ARGS_UNKNOWN_OPTION" | "ERR_PARSE_ARGS_INVALID_OPTION_VALUE";

/** parseArgs' errors are TypeErrors with a code; main.ts reports any ERR_PARSE_ARGS_* as a usage error. */
export class ParseArgsError extends TypeError {
  readonly code: ParseErrorCode;
  constructor(code: ParseErrorCode, message: string) {
    super(message);
    this.code = code;
  }
  override toString(): string {
    return `${this.name} [${this.code}]: ${this.message}`;
  }
}

interface OptionToken {
  /** The long name (or the short letter itself when no option has it). */
  name: string;
  /** As written: `-x` or `--name`. */
  rawName: string;
  value: string | undefined;
  /** The value was written in the same argument (`--name=v`, `-xv`). */
  inlineValue: boolean;
}

function own(options: OptionSpec, name: string): OptionSpecEntry | undefined {
  return Object.hasOwn(options, name) ? options[name] : undefined;
}

function longForShort(letter: string, options: OptionSpec): string {
  for (const [name, spec] of Object.entries(options)) if (spec.short === letter) return name;
  return letter;
}

function takesValue(options: OptionSpec, name: string): boolean {
  return own(options, name)?.type === "string";
}

/** Splits `args` into option tokens and positionals, as parseArgs' tokenizer does. */
function tokenize(
  args: readonly string[],
  options: OptionSpec,
): { tokens: OptionToken[]; positionals: string[] } {
  const tokens: OptionToken[] = [];
  const positionals: string[] = [];
  const remaining = [...args];
  while (remaining.length > 0) {
    const arg = remaining.shift()!;
    const next = remaining[0];
    if (arg === "--") {
      positionals.push(...remaining);
      break;
    }
    const dashed = arg.length > 2 && arg[0] === "-" && arg[1] !== "-";
    if (arg.length === 2 && arg[0] === "-" && arg[1] !== "-") {
      // -x, or -x VALUE for a string option
      const name = longForShort(arg[1]!, options);
      const value = takesValue(options, name) && next !== undefined ? remaining.shift() : undefined;
      tokens.push({ name, rawName: arg, value, inlineValue: false });
    } else if (dashed && !takesValue(options, longForShort(arg[1]!, options))) {
      // -abc: a group of short options, the last (or the first string option) taking the rest
      const expanded: string[] = [];
      for (let i = 1; i < arg.length; i++) {
        const letter = arg[i]!;
        if (!takesValue(options, longForShort(letter, options)) || i === arg.length - 1) {
          expanded.push(`-${letter}`);
        } else {
          expanded.push(`-${arg.slice(i)}`);
          break;
        }
      }
      remaining.unshift(...expanded);
    } else if (dashed) {
      // -xVALUE for a string option
      const letter = arg[1]!;
      tokens.push({
        name: longForShort(letter, options),
        rawName: `-${letter}`,
        value: arg.slice(2),
        inlineValue: true,
      });
    } else if (arg.length > 2 && arg.startsWith("--") && !arg.includes("=", 3)) {
      // --name, or --name VALUE for a string option
      const name = arg.slice(2);
      const value = takesValue(options, name) && next !== undefined ? remaining.shift() : undefined;
      tokens.push({ name, rawName: arg, value, inlineValue: false });
    } else if (arg.length > 2 && arg.startsWith("--")) {
      // --name=VALUE
      const equals = arg.indexOf("=");
      const name = arg.slice(2, equals);
      tokens.push({ name, rawName: `--${name}`, value: arg.slice(equals + 1), inlineValue: true });
    } else {
      positionals.push(arg);
    }
  }
  return { tokens, positionals };
}

/** The strict checks parseArgs makes of each option before storing it. */
function check(options: OptionSpec, token: OptionToken): void {
  const spec = own(options, token.name);
  if (spec === undefined) {
    throw new ParseArgsError(
      "ERR_PARSE_ARGS_UNKNOWN_OPTION",
      `Unknown option '${token.rawName}'. To specify a positional argument starting with a '-', place it at the end of the command after '--', as in '-- ${JSON.stringify(token.rawName)}`,
    );
  }
  const shortAndLong = `${spec.short ? `-${spec.short}, ` : ""}--${token.name}`;
  if (spec.type === "string" && typeof token.value !== "string") {
    throw new ParseArgsError(
      "ERR_PARSE_ARGS_INVALID_OPTION_VALUE",
      `Option '${shortAndLong} <value>' argument missing`,
    );
  }
  if (spec.type === "boolean" && token.value !== undefined) {
    throw new ParseArgsError(
      "ERR_PARSE_ARGS_INVALID_OPTION_VALUE",
      `Option '${shortAndLong}' does not take an argument`,
    );
  }
  if (!token.inlineValue && token.value !== undefined && token.value.length > 1 && token.value[0] === "-") {
    const example = token.rawName.startsWith("--")
      ? `'${token.rawName}=-XYZ'`
      : `'--${token.name}=-XYZ' or '${token.rawName}-XYZ'`;
    throw new ParseArgsError(
      "ERR_PARSE_ARGS_INVALID_OPTION_VALUE",
      `Option '${token.rawName}' argument is ambiguous.\nDid you forget to specify the option argument for '${token.rawName}'?\nTo specify an option argument starting with a dash use ${example}.`,
    );
  }
}

/** `parseArgs({ args, options, strict: true, allowPositionals: true })`, without node:util. */
export function parseArguments(args: readonly string[], options: OptionSpec): ParsedArguments {
  const { tokens, positionals } = tokenize(args, options);
  const values: OptionValues = Object.create(null) as OptionValues;
  for (const token of tokens) {
    check(options, token);
    if (token.name === "__proto__") continue; // as parseArgs: never stored
    const value = token.value ?? true;
    if (own(options, token.name)?.multiple) {
      const list = values[token.name];
      if (Array.isArray(list)) list.push(value);
      else values[token.name] = [value];
    } else {
      values[token.name] = value;
    }
  }
  return { values, positionals };
}
