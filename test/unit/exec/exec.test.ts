import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseExecArguments, parseUser, shellExitCode, statusJson } from "../../../src/cli/commands/exec.js";
import { UsageError } from "../../../src/cli/command.js";
import {
  DEFAULT_PATH,
  execProcess,
  execRefusal,
  parseJsonExact,
  runtimeErrorText,
  stringifyJsonExact,
  type SpecProcess,
} from "../../../src/daemon/exec/process.js";
import { decodeMessage, encodeMessage } from "../../../src/protocol/codec.js";
import {
  EXEC_LIMITS,
  FRAME_HEADER,
  FrameDecoder,
  FrameError,
  MAX_FRAME_PAYLOAD,
  encodeClientFrame,
  encodeDaemonFrame,
  execRequestProblem,
  type ClientFrame,
  type DaemonFrame,
} from "../../../src/protocol/exec.js";
import { LineReader } from "../../../src/protocol/framing.js";
import type { ExecRequest } from "../../../src/protocol/messages.js";

const C = "web:1.0.0";
const REQUEST: ExecRequest = {
  type: "exec",
  container: C,
  command: ["sh"],
  environment: {},
  cwd: null,
  uid: null,
  gid: null,
  tty: false,
  stdin: false,
};

function decodeAll<F extends ClientFrame | DaemonFrame>(decoder: FrameDecoder<F>, bytes: Buffer[]): F[] {
  const frames: F[] = [];
  for (const b of bytes) {
    decoder.push(b);
    for (let f = decoder.next(); f !== undefined; f = decoder.next()) frames.push(f);
  }
  return frames;
}

describe("exec stream frames", () => {
  it("round-trip every client and daemon frame, also fed one byte at a time", () => {
    const client: ClientFrame[] = [
      { type: "stdin", data: Buffer.from("hello") },
      { type: "stdin_eof" },
      { type: "resize", rows: 40, cols: 120 },
      { type: "signal", signal: 15 },
    ];
    const bytes = Buffer.concat(client.flatMap(encodeClientFrame));
    assert.deepEqual(decodeAll(FrameDecoder.client(), [bytes]), client);
    const oneByOne = [...bytes].map((b) => Buffer.from([b]));
    assert.deepEqual(decodeAll(FrameDecoder.client(), oneByOne), client);

    const daemon: DaemonFrame[] = [
      { type: "stdout", data: Buffer.from("out") },
      { type: "stderr", data: Buffer.from("err") },
      { type: "exit", status: { type: "exit", code: 137 } },
      { type: "exit", status: { type: "signalled", signal: 9 } },
      { type: "error", message: "broken" },
    ];
    assert.deepEqual(decodeAll(FrameDecoder.daemon(), daemon.flatMap(encodeDaemonFrame)), daemon);
  });

  it("split data into frames of at most MAX_FRAME_PAYLOAD", () => {
    const data = Buffer.alloc(MAX_FRAME_PAYLOAD * 2 + 1, 7);
    const frames = encodeDaemonFrame({ type: "stdout", data });
    assert.deepEqual(
      frames.map((f) => f.length - FRAME_HEADER),
      [MAX_FRAME_PAYLOAD, MAX_FRAME_PAYLOAD, 1],
    );
    const decoded = decodeAll(FrameDecoder.daemon(), frames);
    assert.deepEqual(
      Buffer.concat(decoded.map((f) => (f.type === "stdout" ? f.data : Buffer.alloc(0)))),
      data,
    );
  });

  it("refuse an oversized frame from its header, before its payload arrives", () => {
    const header = Buffer.alloc(FRAME_HEADER);
    header.writeUInt8(0x01, 0);
    header.writeUInt32BE(MAX_FRAME_PAYLOAD + 1, 1);
    const decoder = FrameDecoder.client();
    decoder.push(header);
    assert.throws(() => decoder.next(), FrameError);
  });

  it("refuse unknown types and malformed payloads", () => {
    const raw = (type: number, payload: number[]): Buffer => {
      const b = Buffer.alloc(FRAME_HEADER + payload.length);
      b.writeUInt8(type, 0);
      b.writeUInt32BE(payload.length, 1);
      Buffer.from(payload).copy(b, FRAME_HEADER);
      return b;
    };
    for (const bad of [
      raw(0x11, []), // a daemon frame type from the client
      raw(0x02, [1]), // stdin_eof with a payload
      raw(0x03, [0, 0, 0, 80]), // zero rows
      raw(0x03, [0, 24]), // short resize
      raw(0x04, [0]), // signal 0
      raw(0x04, [65]),
    ]) {
      const decoder = FrameDecoder.client();
      decoder.push(bad);
      assert.throws(() => decoder.next(), FrameError, bad.toString("hex"));
    }
    const daemon = FrameDecoder.daemon();
    daemon.push(raw(0x13, [...Buffer.from('{"exit":{"code":"x"}}')]));
    assert.throws(() => daemon.next(), FrameError);
  });

  it("follow a response line on the same reader (LineReader.readChunk)", async () => {
    const frame = encodeDaemonFrame({ type: "stdout", data: Buffer.from("x") })[0]!;
    async function* source(): AsyncGenerator<Buffer> {
      yield Buffer.concat([Buffer.from('{"response":"shutdown"}\n'), frame.subarray(0, 3)]);
      yield frame.subarray(3);
    }
    const reader = new LineReader(source(), 1024);
    assert.equal(await reader.nextLine(), '{"response":"shutdown"}');
    const decoder = FrameDecoder.daemon();
    const frames = [];
    for (let chunk = await reader.readChunk(1024); chunk !== null; chunk = await reader.readChunk(1024)) {
      decoder.push(chunk);
      for (let f = decoder.next(); f !== undefined; f = decoder.next()) frames.push(f);
    }
    assert.deepEqual(frames, [{ type: "stdout", data: Buffer.from("x") }]);
  });
});

describe("exec request", () => {
  it("decodes with defaults and encodes back", () => {
    const m = decodeMessage(`{"request":{"exec":{"container":"${C}","command":["sh","-c","true"]}}}`);
    assert.deepEqual(m, { type: "request", request: { ...REQUEST, command: ["sh", "-c", "true"] } });
    assert.deepEqual(decodeMessage(encodeMessage(m).trim()), m);
  });

  it("limits: each refusal names what it broke", () => {
    const problem = (r: Partial<ExecRequest>): string | undefined => execRequestProblem({ ...REQUEST, ...r });
    assert.equal(problem({}), undefined);
    assert.match(problem({ command: [] })!, /command is empty/);
    assert.match(problem({ command: [""] })!, /command name is empty/);
    assert.match(
      problem({ command: Array(EXEC_LIMITS.maxArgs + 1).fill("a") as string[] })!,
      /1025 arguments/,
    );
    assert.match(problem({ command: ["a".repeat(EXEC_LIMITS.maxArgBytes)] })!, /over the limit of 65536/);
    assert.match(problem({ environment: { "1X": "v" } })!, /invalid environment variable name "1X"/);
    assert.match(problem({ environment: { K: "v".repeat(EXEC_LIMITS.maxEnvBytes) } })!, /environment takes/);
    const many = Object.fromEntries(Array.from({ length: EXEC_LIMITS.maxEnv + 1 }, (_, i) => [`K${i}`, ""]));
    assert.match(problem({ environment: many })!, /1025 environment variables/);
    assert.match(problem({ cwd: "tmp" })!, /not absolute/);
    assert.match(problem({ cwd: "/" + "d".repeat(EXEC_LIMITS.maxCwdBytes) })!, /longer than 4096/);
    assert.match(problem({ uid: EXEC_LIMITS.maxId + 1 })!, /uid 4294967295 is out of range/);
    assert.match(problem({ uid: 1, gid: -1 })!, /gid -1 is out of range/);
    assert.match(problem({ gid: 1 })!, /a gid needs a uid/);
  });
});

describe("exec guard", () => {
  const running = (state: "awake" | "asleep" | "paused", busy?: string) => ({
    process: { phase: "running", power: { state, ...(busy && { busy }) } },
  });

  it("refuses unknown, not running, paused, asleep and freezing containers", () => {
    assert.deepEqual(execRefusal(C, undefined), { type: "invalid_container", container: C });
    assert.deepEqual(execRefusal(C, {}), { type: "stop_container_not_started", container: C });
    assert.equal(
      execRefusal(C, { process: { phase: "prepared", power: { state: "awake" } } })?.type,
      "stop_container_not_started",
    );
    assert.match(JSON.stringify(execRefusal(C, running("paused"))), /exec_failed.*paused; resume it first/);
    assert.match(JSON.stringify(execRefusal(C, running("asleep"))), /exec_failed.*suspended; wake it first/);
    assert.match(JSON.stringify(execRefusal(C, running("awake", "pause-freeze"))), /pause-freeze/);
    assert.equal(execRefusal(C, running("awake")), undefined);
  });
});

describe("exec process", () => {
  const spec: SpecProcess = {
    terminal: false,
    user: { uid: 1000, gid: 1000, additionalGids: [5] },
    args: ["/dev/.skiff/init", "--unmount-proc", "--", "/app"],
    env: ["NAME=web", "MODE=prod"],
    cwd: "/",
    capabilities: { bounding: ["CAP_SYS_ADMIN", "CAP_NET_RAW"] },
    rlimits: [{ type: "RLIMIT_NOFILE", hard: 2n ** 64n - 1n, soft: 1024n }],
    noNewPrivileges: true,
  };

  it("has exactly the manifest's capabilities, the request's argv, env, cwd and tty", () => {
    const p = execProcess(spec, ["CAP_NET_RAW"], {
      ...REQUEST,
      command: ["ls", "-l"],
      environment: { MODE: "debug", EXTRA: "1" },
      cwd: "/tmp",
      tty: true,
    });
    assert.deepEqual(p.capabilities, {
      bounding: ["CAP_NET_RAW"],
      effective: ["CAP_NET_RAW"],
      inheritable: ["CAP_NET_RAW"],
      permitted: ["CAP_NET_RAW"],
      ambient: ["CAP_NET_RAW"],
    });
    assert.deepEqual(p.args, ["ls", "-l"]);
    assert.deepEqual(p.env, ["NAME=web", "MODE=debug", "EXTRA=1", `PATH=${DEFAULT_PATH}`]);
    assert.equal(p.cwd, "/tmp");
    assert.equal(p.terminal, true);
    assert.equal(p.noNewPrivileges, true);
    assert.deepEqual(p.user, spec.user);
    assert.deepEqual(p.rlimits, spec.rlimits);
  });

  it("keeps the container's PATH; a uid without gid runs with gid = uid and no extra groups", () => {
    const p = execProcess({ ...spec, env: ["PATH=/bin"] }, [], { ...REQUEST, uid: 7 });
    assert.deepEqual(p.env, ["PATH=/bin"]);
    assert.deepEqual(p.user, { uid: 7, gid: 7 });
    assert.deepEqual(execProcess(spec, [], { ...REQUEST, uid: 7, gid: 0 }).user, { uid: 7, gid: 0 });
  });

  it("reads and writes config.json's integers beyond 2^53 exactly, strings untouched", () => {
    const text =
      '{"rlimits":[{"hard":18446744073709551615,"soft":-12345678901234567}],"env":["A=,12345678901234567,"]}';
    const value = parseJsonExact(text) as { rlimits: { hard: bigint; soft: bigint }[]; env: string[] };
    assert.equal(value.rlimits[0]!.hard, 18446744073709551615n);
    assert.equal(value.rlimits[0]!.soft, -12345678901234567n);
    assert.deepEqual(value.env, ["A=,12345678901234567,"]);
    assert.equal(stringifyJsonExact(value), text);
    assert.deepEqual(parseJsonExact('{"a":1.5e3,"b":"\\"9999999999999999"}'), {
      a: 1500,
      b: '"9999999999999999',
    });
  });

  it("takes runc's message out of its log line, and shortens a crash dump", () => {
    const line =
      'time="2026-12-07T00:37:27Z" level=error msg="exec failed: exec: \\"nope\\": executable file not found in $PATH"\n';
    assert.equal(runtimeErrorText(line), 'exec failed: exec: "nope": executable file not found in $PATH');
    assert.equal(runtimeErrorText("plain crun error\n"), "plain crun error");
    assert.ok(runtimeErrorText("x".repeat(10_000)).length < 600);
  });
});

describe("skiff exec arguments", () => {
  const parsed = (positionals: string[], values: Record<string, string | boolean | string[]> = {}) => ({
    positionals,
    values,
  });

  it("parses container, command and options", () => {
    assert.deepEqual(
      parseExecArguments(
        parsed(["web", "sh", "-c", "id"], {
          interactive: true,
          tty: true,
          env: ["A=1", "B=x=y"],
          cwd: "/srv",
          user: "1000:2000",
        }),
      ),
      {
        container: "web",
        command: ["sh", "-c", "id"],
        environment: { A: "1", B: "x=y" },
        cwd: "/srv",
        uid: 1000,
        gid: 2000,
        tty: true,
        stdin: true,
      },
    );
  });

  it("refuses bad input as usage errors", () => {
    assert.throws(() => parseExecArguments(parsed([])), /needs a container/);
    assert.throws(() => parseExecArguments(parsed(["web"])), /needs a command/);
    assert.throws(() => parseExecArguments(parsed(["web", "true"], { cwd: "rel" })), UsageError);
    assert.throws(() => parseUser("root"), /UID\[:GID\] as numbers/);
    assert.throws(() => parseUser("1:"), UsageError);
    assert.throws(() => parseExecArguments(parsed(["web", "true"], { user: "4294967295" })), /out of range/);
    assert.deepEqual(parseUser("0"), { uid: 0, gid: null });
  });

  it("mirrors the status as the shell does; --json keeps it exact", () => {
    assert.equal(shellExitCode({ type: "exit", code: 3 }), 3);
    assert.equal(shellExitCode({ type: "signalled", signal: 9 }), 137);
    assert.equal(
      statusJson(C, 42, { type: "signalled", signal: 9 }),
      `{"container":"${C}","pid":42,"status":{"signalled":{"signal":9}}}`,
    );
  });
});
