import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { containerDir } from "../../../src/daemon/containers/executor.js";

describe("container directories", () => {
  it("are the container name when the monitor socket fits", () => {
    assert.equal(containerDir("/var/lib/skiff/log/containers", "web"), "/var/lib/skiff/log/containers/web");
  });

  it("are shortened with a hash when the socket path would be too long, distinct per name", () => {
    const a = containerDir("/var/lib/skiff/log/containers", "a".repeat(300));
    const b = containerDir("/var/lib/skiff/log/containers", "a".repeat(299) + "b");
    assert.ok(`${a}/monitor.sock`.length <= 107, a);
    assert.notEqual(a, b);
  });
});
