/**
 * Responses a client does not read are bounded: the daemon stops reading a connection whose
 * unread output is over `max_unread_size` and closes it when it does not drain within
 * `unread_timeout`; a client that reads late loses nothing. Measured on a real skiffd's
 * /proc/<pid>/status (peak resident set), as bounds on sizes.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { startDaemonProcess, type DaemonProcess } from "../../helpers/daemon.js";
import { RawPeer } from "../../helpers/raw.js";
import { CONNECT, closed, memory, rawSocket, waitUntil } from "./proc.js";

const MB = 1024 * 1024;
/** Requests a client pushes without reading: ~100 MB, each answered by a ~2 KB response. */
const FLOOD_BYTES = 100 * MB;
/** The daemon's peak resident set may grow by this much at most while it is flooded. */
const GROWTH_BOUND = 64 * MB;

/** An `inspect` of a container that does not exist; the error response names it twice. */
function inspect(i: number): string {
  return `{"request":{"inspect":{"container":"${"n".repeat(1000)}${i}:1.0.0"}}}\n`;
}

describe("console: back-pressure on responses", () => {
  let d: DaemonProcess;
  before(async () => {
    d = await startDaemonProcess(`
[console.main.options]
max_requests_per_sec = 1000000
max_unread_size = "1M"
unread_timeout = "2s"
`);
  });
  after(() => d.stop());

  it("a client that never reads costs a bounded amount and is closed", async () => {
    const pid = d.child.pid!;
    const peakBefore = await memory(pid, "VmHWM");
    const socket = await rawSocket(d.url, { read: false });
    socket.write(CONNECT);
    const gone = closed(socket).then(() => true);
    let sent = 0;
    for (let i = 0; sent < FLOOD_BYTES; i++) {
      const line = inspect(i);
      sent += line.length;
      if (!socket.write(line)) {
        // Wait for the daemon to take more, or to close the connection.
        const drained = new Promise<boolean>((resolve) => socket.once("drain", () => resolve(false)));
        if (await Promise.race([drained, gone])) break;
      }
    }
    // The daemon stopped reading well before the flood was through and then closed the connection.
    assert.ok(sent < FLOOD_BYTES, `the daemon read all ${sent} bytes of requests`);
    await gone;
    const growth = (await memory(pid, "VmHWM")) - peakBefore;
    assert.ok(growth < GROWTH_BOUND, `peak resident set grew by ${(growth / MB).toFixed(0)} MB`);
    await waitUntil(
      "the reason in the log",
      () => d.log(),
      (log) => /not read within 2000 ms/.test(log),
    );
    // The daemon serves on.
    const p = await RawPeer.open(d.url);
    await p.handshake();
    p.send(`{"request":"list"}`);
    assert.deepEqual(await p.next(), { response: { list: [] } });
    p.close();
  });

  it("a client that reads late gets every response, in order", async () => {
    const p = await RawPeer.open(d.url);
    await p.handshake();
    // ~4 MB of responses: over max_unread_size, so the daemon pauses this connection meanwhile.
    const count = 2000;
    for (let i = 0; i < count; i++) p.socket.write(inspect(i));
    for (let i = 0; i < count; i++) {
      const r = (await p.next()) as { response: { inspect: { error: { container: string } } } };
      assert.equal(r.response.inspect.error.container, `${"n".repeat(1000)}${i}:1.0.0`);
    }
    p.close();
  });
});
