/**
 * The pod network's IPv4 CIDR (`[cri] pod_cidr`), the allocation of pod addresses in it and the
 * rule for interface names (`[cri] pod_bridge`). Pure, and free of imports: the daemon's config
 * schema checks its keys with it.
 * The first host address is the bridge's (the pods' gateway); pods get the others, never the
 * network or broadcast address.
 */

export interface Ipv4Cidr {
  /** The network address as an unsigned 32-bit number. */
  network: number;
  prefix: number;
}

/** Smallest and largest prefix accepted: a /8 at most, and room for a few pods at least. */
const MIN_PREFIX = 8;
const MAX_PREFIX = 29;

/** The dotted quad as an unsigned 32-bit number, or undefined. */
export function parseIpv4(text: string): number | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  let value = 0;
  for (const part of parts) {
    if (!/^(0|[1-9]\d{0,2})$/.test(part)) return undefined;
    const octet = Number(part);
    if (octet > 255) return undefined;
    value = value * 256 + octet;
  }
  return value;
}

export function formatIpv4(value: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join(".");
}

/** `a.b.c.d/n` with the host bits zero; a problem text otherwise. */
export function parseCidr(text: string): Ipv4Cidr | string {
  const match = /^([0-9.]{7,15})\/(\d{1,2})$/.exec(text);
  const address = match ? parseIpv4(match[1]!) : undefined;
  if (match === null || address === undefined) return `"${text}" is not an IPv4 CIDR such as 10.88.0.0/16`;
  const prefix = Number(match[2]);
  if (prefix < MIN_PREFIX || prefix > MAX_PREFIX) {
    return `"${text}": the prefix must be between /${MIN_PREFIX} and /${MAX_PREFIX}`;
  }
  if (address % 2 ** (32 - prefix) !== 0) return `"${text}" has host bits set`;
  return { network: address, prefix };
}

/** The bridge's address: the first host of the network. */
export function gatewayOf(cidr: Ipv4Cidr): string {
  return formatIpv4(cidr.network + 1);
}

/** Pod addresses: every host address but the gateway's. */
export function podAddressCount(cidr: Ipv4Cidr): number {
  return 2 ** (32 - cidr.prefix) - 3;
}

/**
 * A free pod address: a random one first (so that two daemons that share a bridge by mistake
 * rarely collide, and a freed address is not handed out again at once), then the next free one
 * after it. Undefined when all are used. `random` returns a number in [0, 1).
 */
export function allocateAddress(
  cidr: Ipv4Cidr,
  used: ReadonlySet<string>,
  random: () => number = Math.random,
): string | undefined {
  const count = podAddressCount(cidr);
  const start = Math.floor(random() * count);
  for (let i = 0; i < count; i++) {
    const address = formatIpv4(cidr.network + 2 + ((start + i) % count));
    if (!used.has(address)) return address;
  }
  return undefined;
}

/** Why `name` is not a usable interface name (IFNAMSIZ 16 with the NUL; no '/', ':' or blanks). */
export function interfaceNameProblem(name: string): string | undefined {
  if (!/^[a-zA-Z0-9_.-]{1,15}$/.test(name) || name === "." || name === "..") {
    return "expected 1 to 15 letters, digits, '_', '.' or '-'";
  }
  return undefined;
}
