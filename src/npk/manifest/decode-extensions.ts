import { joinPath } from "./errors.js";
import { type Raw, type Reader, readIntegers, setIfDefined } from "./reader.js";
import { type Power, type PowerProxy, PROXY_FRAMINGS, type Restart, RESTART_POLICIES } from "./types.js";

/** Skiff extensions: see docs/manifest.md. Durations are checked in validate.ts. */
export function decodeRestart(read: Reader, value: Raw): Restart | undefined {
  const raw = read.object(value, "restart", ["policy", "max_retries", "backoff"], ["policy"]);
  if (raw?.policy === undefined) return undefined;
  const policy = read.oneOf(raw.policy, "restart.policy", RESTART_POLICIES);
  if (policy === undefined) return undefined;
  const out: Restart = { policy };
  readIntegers(read, raw, "restart", out, [["max_retries", 0, Number.MAX_SAFE_INTEGER]]);
  if (raw.backoff != null) {
    const backoff = read.object(raw.backoff, "restart.backoff", ["initial", "max"], ["initial", "max"]);
    if (backoff?.initial !== undefined && backoff.max !== undefined) {
      const initial = read.string(backoff.initial, "restart.backoff.initial");
      const max = read.string(backoff.max, "restart.backoff.max");
      if (initial !== undefined && max !== undefined) out.backoff = { initial, max };
    }
  }
  return out;
}

export function decodePower(read: Reader, value: Raw): Power | undefined {
  const raw = read.object(value, "power", ["idle_suspend_after", "proxies"]);
  if (raw === undefined) return undefined;
  const out: Power = {};
  if (raw.idle_suspend_after != null) {
    setIfDefined(out, "idle_suspend_after", read.string(raw.idle_suspend_after, "power.idle_suspend_after"));
  }
  if (raw.proxies != null) {
    const items = read.array(raw.proxies, "power.proxies") ?? [];
    out.proxies = items.flatMap((item, i): PowerProxy[] => {
      const path = joinPath("power.proxies", i);
      const body = read.object(
        item,
        path,
        ["name", "listen", "target", "framing"],
        ["name", "listen", "target"],
      );
      if (body?.name === undefined || body.listen === undefined || body.target === undefined) return [];
      const name = read.string(body.name, joinPath(path, "name"));
      const listen = read.string(body.listen, joinPath(path, "listen"));
      const target = read.string(body.target, joinPath(path, "target"));
      if (name === undefined || listen === undefined || target === undefined) return [];
      const proxy: PowerProxy = { name, listen, target };
      if (body.framing != null)
        setIfDefined(proxy, "framing", read.oneOf(body.framing, joinPath(path, "framing"), PROXY_FRAMINGS));
      return [proxy];
    });
  }
  return out;
}
