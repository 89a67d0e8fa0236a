/**
 * The pod network: one Linux bridge (`[cri] pod_bridge`, default skiff0) holding the first address
 * of `[cri] pod_cidr`, and per pod a veth pair whose host end is on the bridge and whose other end
 * is the pod's `eth0` with the pod's address and a default route through the bridge. Done with
 * iproute2's `ip`; the bridge is created once and left in place (other daemons or a restart may
 * use it), the veth is deleted when the pod's network is released (its peer goes with it).
 *
 * Not done: NAT to the outside and IPv6. Pods reach the host and each other; the host reaches
 * them; outbound traffic needs forwarding and masquerading, which Skiff does not configure.
 */
import { access, readFile } from "node:fs/promises";
import { gatewayOf, type Ipv4Cidr } from "./cidr.js";
import { runTool, toolStderr } from "./tools.js";

export interface PodNetworkConfig {
  bridge: string;
  cidr: Ipv4Cidr;
}

/** The host end of a pod's veth, derived from the pod's id (so a crash leftover can be found). */
export function vethName(podId: string): string {
  return `sk${podId.slice(0, 13)}`;
}

/**
 * Creates the bridge with the gateway address and brings it up; what already exists is kept. An
 * interface of that name that is not a bridge is refused (it is not Skiff's to change).
 */
export async function ensureBridge(config: PodNetworkConfig): Promise<void> {
  const { bridge, cidr } = config;
  const shown = await runTool("ip", ["-j", "-d", "link", "show", "dev", bridge]).catch((e: unknown) => {
    if (/does not exist/.test(toolStderr(e))) return undefined;
    throw e;
  });
  if (shown === undefined) {
    await runTool("ip", ["link", "add", bridge, "type", "bridge"]).catch((e: unknown) => {
      if (!/File exists/.test(toolStderr(e))) throw e; // another daemon made it meanwhile
    });
  } else {
    const kind = (JSON.parse(shown) as { linkinfo?: { info_kind?: string } }[])[0]?.linkinfo?.info_kind;
    if (kind !== "bridge") throw new Error(`${bridge} exists and is not a bridge (${kind ?? "no kind"})`);
  }
  const address = `${gatewayOf(cidr)}/${cidr.prefix}`;
  await runTool("ip", ["addr", "add", address, "dev", bridge]).catch((e: unknown) => {
    if (!/File exists/.test(toolStderr(e))) throw e;
  });
  await runTool("ip", ["link", "set", bridge, "up"]);
}

/** Whether the bridge exists and is up, read from sysfs (no process: `Status` asks often). */
export async function bridgeUp(bridge: string): Promise<boolean> {
  const flags = await readFile(`/sys/class/net/${bridge}/flags`, "utf8").catch(() => undefined);
  const isBridge = await access(`/sys/class/net/${bridge}/bridge`).then(
    () => true,
    () => false,
  );
  // IFF_UP is bit 0 of the interface flags.
  return isBridge && flags !== undefined && (parseInt(flags.trim(), 16) & 1) === 1;
}

/**
 * Connects the pod's network namespace (held at `netns`) to the bridge: the veth pair, the pod's
 * `eth0` with `address`, the default route through the gateway.
 */
export async function attachPod(
  config: PodNetworkConfig,
  netns: string,
  veth: string,
  address: string,
): Promise<void> {
  await runTool("ip", ["link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns]);
  try {
    await runTool("ip", ["link", "set", veth, "master", config.bridge, "up"]);
    const inside = [
      `addr add ${address}/${config.cidr.prefix} dev eth0`,
      "link set eth0 up",
      `route add default via ${gatewayOf(config.cidr)}`,
    ].join("\n");
    await runTool("nsenter", [`--net=${netns}`, "--", "ip", "-batch", "-"], `${inside}\n`);
  } catch (e) {
    await detachPod(veth).catch(() => undefined);
    throw e;
  }
}

/** Puts the pod's veth back on the bridge (after the bridge was made again); a veth that is gone is fine. */
export async function reattachPod(config: PodNetworkConfig, veth: string): Promise<void> {
  await runTool("ip", ["link", "set", veth, "master", config.bridge, "up"]).catch((e: unknown) => {
    if (!/Cannot find device|does not exist/.test(toolStderr(e))) throw e;
  });
}

/** Deletes the pod's veth (and so its `eth0`); a veth that is gone already is fine. */
export async function detachPod(veth: string): Promise<void> {
  await runTool("ip", ["link", "del", veth]).catch((e: unknown) => {
    if (!/Cannot find device|does not exist/.test(toolStderr(e))) throw e;
  });
}

/** The pod's `eth0` counters, as seen from the host end of its veth (received there = sent by the pod). */
export interface PodInterfaceCounters {
  rxBytes: number;
  rxErrors: number;
  txBytes: number;
  txErrors: number;
}

/** Reads the host end's sysfs counters and turns them round; undefined when the veth is gone. */
export async function podInterfaceCounters(veth: string): Promise<PodInterfaceCounters | undefined> {
  const read = (name: string): Promise<number> =>
    readFile(`/sys/class/net/${veth}/statistics/${name}`, "utf8").then((text) => Number(text.trim()));
  try {
    const [rxBytes, rxErrors, txBytes, txErrors] = await Promise.all([
      read("tx_bytes"),
      read("tx_errors"),
      read("rx_bytes"),
      read("rx_errors"),
    ]);
    return { rxBytes, rxErrors, txBytes, txErrors };
  } catch {
    return undefined;
  }
}
