// A stand-in daemon for daemon-crash.test.ts: spawns a monitor, prints its
// pid and the container's init pid as one JSON line, then idles until killed.
import { spawnMonitor } from "../../../src/daemon/monitor/client.js";

const [id, bundleDir, stateDir, runtimeRoot] = process.argv.slice(2);
const conn = await spawnMonitor({
  id: id!,
  bundleDir: bundleDir!,
  stateDir: stateDir!,
  runtime: "/usr/sbin/runc",
  runtimeRoot: runtimeRoot!,
  io: { stdout: "inherit", stderr: "inherit" },
  log: { maxBytes: 1 << 20, files: 1 },
});
await conn.start();
process.stdout.write(JSON.stringify({ monitorPid: conn.monitorPid, initPid: conn.initPid }) + "\n");
setInterval(() => undefined, 60_000);
