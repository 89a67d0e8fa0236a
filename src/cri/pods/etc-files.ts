/**
 * The contents of a pod's /etc/hosts, /etc/resolv.conf and /etc/hostname (bind-mounted into each
 * container by the containers side). Pure: every input has been validated by spec.ts.
 */
import type { DnsSpec } from "./spec.js";

export function renderHostname(hostname: string): string {
  return `${hostname}\n`;
}

/** localhost on both families, and the pod's own name on its address (or on 127.0.1.1 without one). */
export function renderHosts(hostname: string, ip: string | undefined): string {
  const lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"];
  if (hostname !== "") lines.push(`${ip ?? "127.0.1.1"}\t${hostname}`);
  return `${lines.join("\n")}\n`;
}

/** resolv.conf from the pod's DNS config (the order glibc reads: search, nameserver, options). */
export function renderResolvConf(dns: DnsSpec): string {
  const lines: string[] = [];
  if (dns.searches.length > 0) lines.push(`search ${dns.searches.join(" ")}`);
  for (const server of dns.servers) lines.push(`nameserver ${server}`);
  if (dns.options.length > 0) lines.push(`options ${dns.options.join(" ")}`);
  return `${lines.join("\n")}\n`;
}
