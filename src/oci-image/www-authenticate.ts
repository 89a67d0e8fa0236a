// RFC 7235 challenges from a WWW-Authenticate header, as registries send them:
//   Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull"
// Pure; bounded (header length, parameter count) before any work.
import { OciImageError } from "./errors.js";

const MAX_HEADER_LENGTH = 8192;
const MAX_PARAMS = 32;

export interface Challenge {
  /** Lowercase scheme: "bearer", "basic", … */
  scheme: string;
  /** Parameters by lowercase name. */
  params: Record<string, string>;
}

const TOKEN = /[!#$%&'*+.^_`|~0-9A-Za-z-]+/y;
const SPACES = /[ \t]*/y;

/** Parses a header value into its challenges; throws OciImageError("registry") on malformed input. */
export function parseWwwAuthenticate(header: string): Challenge[] {
  if (header.length > MAX_HEADER_LENGTH)
    throw new OciImageError("registry", "WWW-Authenticate header too long");
  const challenges: Challenge[] = [];
  let pos = 0;
  const bad = (reason: string): never => {
    throw new OciImageError("registry", `malformed WWW-Authenticate header at offset ${pos}: ${reason}`);
  };
  const skipSpaces = () => {
    SPACES.lastIndex = pos;
    SPACES.exec(header);
    pos = SPACES.lastIndex;
  };
  const token = (): string | undefined => {
    TOKEN.lastIndex = pos;
    const m = TOKEN.exec(header);
    if (m === null) return undefined;
    pos = TOKEN.lastIndex;
    return m[0];
  };
  const quoted = (): string => {
    let value = "";
    pos++; // opening quote
    while (pos < header.length && header[pos] !== '"') {
      if (header[pos] === "\\") pos++;
      if (pos >= header.length) break;
      value += header[pos];
      pos++;
    }
    if (header[pos] !== '"') bad("unterminated quoted string");
    pos++;
    return value;
  };
  skipSpaces();
  while (pos < header.length) {
    if (header[pos] === ",") {
      pos++;
      skipSpaces();
      continue;
    }
    const scheme = token() ?? bad("expected an auth scheme");
    const challenge: Challenge = { scheme: scheme.toLowerCase(), params: {} };
    challenges.push(challenge);
    skipSpaces();
    // auth-params: name = value, separated by commas; a following "Scheme " starts a new challenge.
    for (;;) {
      const start = pos;
      const name = token();
      if (name === undefined) break;
      skipSpaces();
      if (header[pos] !== "=") {
        pos = start; // a token68 or the next challenge's scheme
        if (
          Object.keys(challenge.params).length === 0 &&
          /^[A-Za-z0-9._~+/-]+=*$/.test(header.slice(pos).split(/[ ,]/)[0] ?? "")
        ) {
          // token68 (e.g. "Negotiate abc=="): not used by registries; skip it.
          pos += (header.slice(pos).split(/[ ,]/)[0] ?? "").length;
        }
        break;
      }
      pos++;
      skipSpaces();
      const value = header[pos] === '"' ? quoted() : (token() ?? bad(`expected a value for ${name}`));
      if (Object.keys(challenge.params).length >= MAX_PARAMS) bad("too many parameters");
      challenge.params[name.toLowerCase()] = value;
      skipSpaces();
      if (header[pos] !== ",") break;
      pos++;
      skipSpaces();
    }
    skipSpaces();
  }
  return challenges;
}
