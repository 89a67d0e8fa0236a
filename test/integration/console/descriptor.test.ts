/**
 * Northstar's console descriptor: a container with `console:` finds a connected socket's number
 * in NORTHSTAR_CONSOLE (Client::from_env() reads it so) and speaks Northstar's dialect on it.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ContainerHarness } from "../../helpers/containers.js";
import { decodeNorthstarLine } from "../../helpers/northstar-strict.js";

describe("the console as a descriptor", () => {
  let h: ContainerHarness;
  let app: string;
  let plain: string;
  before(async () => {
    h = await ContainerHarness.create();
    const connect = '{"connect":{"version":"0.9.2","subscribe_notifications":false}}';
    app = await h.add(
      h.name("fd"),
      "/bin/sh",
      [
        "-c",
        `echo fd=$NORTHSTAR_CONSOLE; { echo '${connect}'; echo '{"request":"ident"}'; } >&$NORTHSTAR_CONSOLE; ` +
          "head -n 2 <&$NORTHSTAR_CONSOLE; echo done",
      ],
      "console:\n  permissions: [ident]\n",
    );
    plain = await h.add(h.name("plain"), "/bin/sh", ["-c", "echo fd=${NORTHSTAR_CONSOLE-unset}; echo done"]);
    await h.startDaemon();
  });
  after(() => h.close());

  const stdout = async (id: string): Promise<string[]> =>
    (await h.logLines(id)).filter((l) => l.startsWith("stdout ")).map((l) => l.slice("stdout ".length));

  it("a busybox container writes connect and ident to the descriptor and reads its own identity", async () => {
    await h.client.start(app);
    await h.waitForLog(app, "stdout done");
    const [fd, ack, ident] = await stdout(app);
    assert.match(fd!, /^fd=\d+$/);
    assert.deepEqual(decodeNorthstarLine(ack!), { connect_ack: null });
    assert.deepEqual(decodeNorthstarLine(ident!), { response: { ident: app } });
  });

  it("without console: no NORTHSTAR_CONSOLE", async () => {
    await h.client.start(plain);
    await h.waitForLog(plain, "stdout done");
    assert.equal((await stdout(plain))[0], "fd=unset");
  });
});
