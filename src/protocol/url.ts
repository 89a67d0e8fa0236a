/** Console addresses: `unix:///absolute/path` or `tcp://host:port`. */

export type ConsoleUrl = { scheme: "unix"; path: string } | { scheme: "tcp"; host: string; port: number };

/** The daemon's default listener, and the CLI's default target. */
export const DEFAULT_CONSOLE_URL = "unix:///run/skiff/skiff.sock";

/** Parses a console URL; returns the reason as a string when it is not one. */
export function parseConsoleUrl(text: string): ConsoleUrl | string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return `invalid URL ${JSON.stringify(text)}`;
  }
  if (url.protocol === "unix:") {
    const path = decodeURIComponent(url.host + url.pathname);
    if (!path.startsWith("/")) return "unix:// URLs need an absolute path (unix:///run/skiff.sock)";
    return { scheme: "unix", path };
  }
  if (url.protocol === "tcp:") {
    const port = Number(url.port);
    if (!url.hostname || !Number.isInteger(port) || port < 0 || port > 65535 || url.port === "") {
      return "tcp:// URLs need a host and a port (tcp://127.0.0.1:4200)";
    }
    return { scheme: "tcp", host: url.hostname.replace(/^\[|\]$/g, ""), port };
  }
  return `expected a unix:// or tcp:// URL, got ${JSON.stringify(url.protocol)}`;
}

export function formatConsoleUrl(url: ConsoleUrl): string {
  return url.scheme === "unix" ? `unix://${url.path}` : `tcp://${url.host}:${url.port}`;
}
