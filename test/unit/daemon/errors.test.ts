import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  DaemonError,
  bestEffort,
  type CleanupLog,
  describeShutdown,
  failureToWire,
  shutdownExitCode,
  toWireError,
} from "../../../src/daemon/errors.js";
import { NpkError } from "../../../src/npk/errors.js";
import { northstarError } from "../../../src/protocol/dialect.js";

const C = "hello:0.0.1";

/** A logger that records what it was told. */
function recorder(): { warn: string[]; debug: string[]; log: CleanupLog } {
  const warn: string[] = [];
  const debug: string[] = [];
  return { warn, debug, log: { warn: (_o, m) => void warn.push(m), debug: (_o, m) => void debug.push(m) } };
}

describe("internal errors to wire errors", () => {
  it("maps typed failures to their one wire form", () => {
    assert.deepEqual(toWireError(new DaemonError({ kind: "not_running", container: C })), {
      type: "unexpected",
      error: `${C} is not running`,
    });
    assert.deepEqual(toWireError(new DaemonError({ kind: "unsupported", what: "checkpoint: no criu" })), {
      type: "unsupported",
      request: "checkpoint: no criu",
    });
    assert.deepEqual(failureToWire({ kind: "shutting_down" }), {
      type: "unexpected",
      error: "the daemon is shutting down",
    });
  });

  it("maps package errors to invalid_arguments and anything else to unexpected, with context", () => {
    assert.deepEqual(toWireError(new NpkError("signature", "bad signature"), C), {
      type: "invalid_arguments",
      cause: `${C}: signature: bad signature`,
    });
    assert.deepEqual(toWireError(new Error("disk full"), C), {
      type: "unexpected",
      error: `${C}: disk full`,
    });
    assert.deepEqual(toWireError("plain"), { type: "unexpected", error: "plain" });
  });

  it("leaves Skiff's richer variants to the Northstar projection", () => {
    const wire = toWireError(new DaemonError({ kind: "unsupported", what: "restore" }));
    assert.deepEqual(northstarError(wire), { type: "unexpected", error: "unsupported: restore" });
  });
});

describe("bestEffort", () => {
  it("never rejects, warns about a failure and only notes one it expected", async () => {
    const r = recorder();
    await bestEffort(r.log, "removing x", Promise.reject(new Error("EBUSY")));
    await bestEffort(
      r.log,
      "removing y",
      Promise.reject(Object.assign(new Error("gone"), { code: "ENOENT" })),
    );
    await bestEffort(
      r.log,
      "posting",
      Promise.reject(new RangeError("closed")),
      (e) => e instanceof RangeError,
    );
    await bestEffort(r.log, "nothing", undefined);
    await bestEffort(r.log, "fine", Promise.resolve(1));
    assert.deepEqual(r.warn, ["removing x failed (ignored): EBUSY"]);
    assert.deepEqual(r.debug, ["removing y: gone", "posting: closed"]);
  });
});

describe("shutdown reasons", () => {
  it("choose skiffd's exit code by kind, not by text", () => {
    assert.equal(shutdownExitCode({ kind: "request" }), 0);
    assert.equal(shutdownExitCode({ kind: "host", cause: "received SIGTERM" }), 0);
    const critical = { kind: "critical_container", container: C, failure: "exited: exit code 7" } as const;
    assert.equal(shutdownExitCode(critical), 1);
    assert.equal(describeShutdown(critical), `critical container ${C} exited: exit code 7`);
    assert.equal(describeShutdown({ kind: "request" }), "shutdown request");
  });
});
