/**
 * Console protocol version. Skiff speaks Northstar's console 0.9 and only adds to it, so it
 * announces a 0.9 version: Northstar 0.9 clients connect unchanged.
 */
export const PROTOCOL_VERSION = "0.9.2";

export interface ProtocolVersion {
  major: number;
  minor: number;
  patch: number;
  /** Pre-release and build suffix, kept verbatim ("" when absent). */
  suffix: string;
}

const VERSION_RE = /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)([-+][0-9A-Za-z.+-]*)?$/;

export function parseProtocolVersion(text: string): ProtocolVersion | undefined {
  const m = VERSION_RE.exec(text);
  if (!m) return undefined;
  return { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]), suffix: m[4] ?? "" };
}

/**
 * Northstar's rule: a client is accepted when its version is >= the server's major.minor
 * (patch and pre-release are ignored). A lower major.minor gets `invalid_protocol_version`.
 */
export function isCompatibleClientVersion(client: string, server: string = PROTOCOL_VERSION): boolean {
  const c = parseProtocolVersion(client);
  const s = parseProtocolVersion(server);
  if (!c || !s) return false;
  if (c.major !== s.major) return c.major > s.major;
  return c.minor >= s.minor;
}
