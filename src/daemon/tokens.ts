/**
 * Console tokens with Northstar 0.9's semantics (`token_create`, `token_verify`).
 *
 * A token says: "the connection identified as USER asked for a token for TARGET with SHARED, at
 * time T". It is 40 bytes on the wire: T as a big-endian u64 of whole seconds since the daemon
 * started, then a 32-byte HMAC-SHA256 over T, USER, TARGET and SHARED with a key the daemon draws
 * at start (so tokens do not survive a daemon restart, as in Northstar).
 *
 * USER is never taken from the request: it is the identity of the connection that creates the
 * token (a container console's container name, "extern" for host clients), and TARGET on
 * verification is the identity of the verifying connection. So container C cannot produce a
 * token that B accepts as coming from A (Northstar's Cure53 finding ESR-01-012), and a token made
 * for B does not verify anywhere else. A token is a bearer secret between its creator and its
 * target: whoever holds it may present it to the target within its validity.
 *
 * Order of checks, as Northstar's: a time after now is `Future`, an age above the validity is
 * `Expired` (both before the HMAC is looked at), then the HMAC decides `Ok` or `Invalid`.
 *
 * Everything here is pure except `newTokenKey`, which the runtime calls once at start.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { VerificationResult } from "../protocol/messages.js";
import { nameOf, type ContainerId } from "../protocol/container.js";

export const TOKEN_BYTES = 40;
const TIME_BYTES = 8;
const KEY_BYTES = 32;

/** The daemon's token secret and the origin of token time. Drawn once per daemon start. */
export interface TokenKey {
  readonly secret: Buffer;
  /** Epoch ms the daemon started: token time counts whole seconds from here. */
  readonly originMs: number;
}

/** The runtime's one effect for tokens: a fresh secret at start. */
export function newTokenKey(nowMs: number): TokenKey {
  return { secret: randomBytes(KEY_BYTES), originMs: nowMs };
}

/** Northstar's identity of a connection in tokens: the container's name, or "extern". */
export function tokenIdentity(
  peer: { kind: "extern" } | { kind: "container"; container: ContainerId },
): string {
  if (peer.kind === "extern") return "extern";
  return nameOf(peer.container);
}

/** Whole seconds since the daemon started (0 if the wall clock went back before the start). */
function tokenTime(key: TokenKey, nowMs: number): number {
  return Math.max(0, Math.floor((nowMs - key.originMs) / 1000));
}

function mac(key: TokenKey, seconds: number, user: string, target: string, shared: Buffer): Buffer {
  // Each part is hashed on its own first, so that no choice of strings can shift bytes from one
  // part into the next (user "ab" + target "c" must differ from user "a" + target "bc").
  const part = (bytes: Buffer | string): Buffer => createHmac("sha256", key.secret).update(bytes).digest();
  const time = Buffer.alloc(TIME_BYTES);
  time.writeBigUInt64BE(BigInt(seconds));
  return createHmac("sha256", key.secret)
    .update(time)
    .update(part(user))
    .update(part(target))
    .update(part(shared))
    .digest();
}

/** A token for `target`, created by the connection identified as `user`. 40 bytes. */
export function createToken(
  key: TokenKey,
  nowMs: number,
  user: string,
  target: string,
  shared: Buffer,
): Buffer {
  const seconds = tokenTime(key, nowMs);
  const token = Buffer.alloc(TOKEN_BYTES);
  token.writeBigUInt64BE(BigInt(seconds), 0);
  mac(key, seconds, user, target, shared).copy(token, TIME_BYTES);
  return token;
}

/**
 * Verifies `token` as created by `user` for `target` (the verifying connection) with `shared`.
 * A token that is not 40 bytes is `Invalid` (Northstar's decoder refuses it before this point).
 */
export function verifyToken(
  key: TokenKey,
  nowMs: number,
  validityMs: number,
  token: Buffer,
  user: string,
  target: string,
  shared: Buffer,
): VerificationResult {
  if (token.length !== TOKEN_BYTES) return "Invalid";
  const created = token.readBigUInt64BE(0);
  const now = BigInt(tokenTime(key, nowMs));
  if (now < created) return "Future";
  // Whole seconds against the configured validity, as Northstar compares its Durations.
  if (Number(now - created) * 1000 > validityMs) return "Expired";
  const expected = mac(key, Number(created), user, target, shared);
  return timingSafeEqual(expected, token.subarray(TIME_BYTES)) ? "Ok" : "Invalid";
}
