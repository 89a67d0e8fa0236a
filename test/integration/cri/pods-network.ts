/**
 * A pod network of a test's own for a CRI test daemon: a bridge name and a /24 no other test
 * process uses (from the pid and a counter), as `[cri]` TOML, and the removal of the bridge the
 * daemon created (skiffd leaves its bridge in place on purpose). Every CRI test daemon uses one,
 * so tests running beside each other never share a bridge or an address.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";

const run = promisify(execFile);
let networks = 0;

export interface TestPodNetwork {
  bridge: string;
  cidr: string;
  /** The first three octets and a dot: `10.213.x.`. */
  prefix: string;
  /** `pod_cidr`, `pod_bridge` and `sandbox_pool` lines for the daemon's `[cri]` table. */
  toml(pool?: number): string;
  /**
   * Deletes the bridge; absent is fine. Call it after the daemon's cleanup: a pod's veth goes
   * with its network namespace, which goes when cleanupDaemon unmounts the namespace files.
   */
  remove(): Promise<void>;
}

export function testPodNetwork(): TestPodNetwork {
  networks += 1;
  const x = (process.pid * 7 + networks) % 250;
  const bridge = `skt${process.pid % 100000}n${networks}`;
  const cidr = `10.213.${x}.0/24`;
  return {
    bridge,
    cidr,
    prefix: `10.213.${x}.`,
    toml: (pool = 0) => `pod_cidr = "${cidr}"\npod_bridge = "${bridge}"\nsandbox_pool = ${pool}\n`,
    async remove() {
      const exists = await run("ip", ["link", "show", "dev", bridge]).then(
        () => true,
        () => false,
      );
      if (exists) await run("ip", ["link", "del", bridge]);
    },
  };
}
