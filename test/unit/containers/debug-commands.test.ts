import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { debugCommandArgv } from "../../../src/daemon/containers/debug-commands.js";

describe("[debug] commands", () => {
  it("substitute <PID> and <CONTAINER> everywhere and split at whitespace, without a shell", () => {
    assert.deepEqual(
      debugCommandArgv(
        "  strace -f -s 256 -p <PID>   -o /tmp/strace-<CONTAINER>-<PID>.log ",
        "hello:0.0.1",
        4242,
      ),
      ["strace", "-f", "-s", "256", "-p", "4242", "-o", "/tmp/strace-hello:0.0.1-4242.log"],
    );
    assert.deepEqual(debugCommandArgv("echo $(id) ; rm <CONTAINER>", "a:1.0.0", 1), [
      "echo",
      "$(id)",
      ";",
      "rm",
      "a:1.0.0",
    ]);
  });
});
