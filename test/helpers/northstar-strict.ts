/**
 * A strict decoder of console lines as Northstar 0.9.2's client reads them (api/model.rs,
 * npk/manifest), written from serde's rules: `Message` is untagged (one of six one-key shapes),
 * every enum is externally tagged in snake_case (a unit variant is the bare string, any other a
 * one-key object; a tuple variant's value is an array, a newtype's the value itself), no enum
 * has a catch-all variant, and `Manifest` with its `console`, mounts and `io` denies unknown
 * fields. It is stricter than serde in one way, on purpose: model structs (exit status, memory
 * notification, container data, process...) also refuse members Northstar does not have, so a
 * Skiff field that a Northstar client would merely ignore still fails a test.
 *
 * `decodeNorthstarLine` throws an Error naming the JSON path; `StrictNorthstarPeer` wraps a raw
 * connection and fails on the first line it cannot decode.
 */
import { connect, type Socket } from "node:net";
import { LineReader } from "../../src/protocol/framing.js";
import { WaitTimeoutError, within } from "./wait.js";

// A reply or the end of the connection: long enough for a loaded host, short of the test's own.
const NEXT_TIMEOUT_MS = 30_000;

type V = unknown;
type Check = (v: V, path: string) => void;

const fail = (path: string, why: string): never => {
  throw new Error(`not a Northstar 0.9.2 line at ${path || "<root>"}: ${why}`);
};
const isObj = (v: V): v is Record<string, V> => typeof v === "object" && v !== null && !Array.isArray(v);

const str: Check = (v, p) => void (typeof v === "string" || fail(p, "expected a string"));
const bool: Check = (v, p) => void (typeof v === "boolean" || fail(p, "expected a bool"));
const int =
  (min: number, max: number): Check =>
  (v, p) =>
    void (
      (Number.isInteger(v) && (v as number) >= min && (v as number) <= max) ||
      fail(p, "expected an integer")
    );
const u32 = int(0, 2 ** 32 - 1);
const i32 = int(-(2 ** 31), 2 ** 31 - 1);
const u64 = int(0, Number.MAX_SAFE_INTEGER);
const nullable =
  (c: Check): Check =>
  (v, p) =>
    v === null ? undefined : c(v, p);
const array =
  (c: Check): Check =>
  (v, p) => {
    if (!Array.isArray(v)) fail(p, "expected an array");
    (v as V[]).forEach((x, i) => c(x, `${p}[${i}]`));
  };
const anyObject: Check = (v, p) => void (isObj(v) || fail(p, "expected an object"));
const container: Check = (v, p) => {
  str(v, p);
  if (!/^[^:]+:\d+\.\d+\.\d+/.test(v as string)) fail(p, "expected name:version");
};
const base64: Check = (v, p) => {
  str(v, p);
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(v as string)) fail(p, "expected base64");
};

/** A struct: required and optional fields; unknown members refused. */
function struct(required: Record<string, Check>, optional: Record<string, Check> = {}): Check {
  return (v, p) => {
    if (!isObj(v)) fail(p, "expected an object");
    const o = v as Record<string, V>;
    for (const [k, c] of Object.entries(required)) {
      if (!(k in o)) fail(p, `missing field ${k}`);
      c(o[k], `${p}.${k}`);
    }
    for (const [k, val] of Object.entries(o)) {
      if (k in required) continue;
      const c = optional[k];
      if (!c) fail(p, `unknown field ${k}`);
      if (val !== null) c!(val, `${p}.${k}`);
    }
  };
}

const UNIT: Check = () => undefined;
/** An externally tagged enum; `UNIT` marks unit variants (bare strings). */
function enumeration(variants: Record<string, Check>): Check {
  return (v, p) => {
    if (typeof v === "string") {
      if (variants[v] !== UNIT) fail(p, `unknown unit variant ${JSON.stringify(v)}`);
      return;
    }
    if (!isObj(v)) fail(p, "expected a variant");
    const keys = Object.keys(v as object);
    if (keys.length !== 1) fail(p, `expected one variant key, got ${keys.length}`);
    const k = keys[0]!;
    const c = variants[k];
    if (!c || c === UNIT) fail(p, `unknown variant ${JSON.stringify(k)}`);
    c!((v as Record<string, V>)[k], `${p}.${k}`);
  };
}
const tuple =
  (...items: Check[]): Check =>
  (v, p) => {
    if (!Array.isArray(v) || v.length !== items.length) fail(p, `expected a ${items.length}-tuple`);
    items.forEach((c, i) => c((v as V[])[i], `${p}[${i}]`));
  };

const exitStatus = enumeration({ exit: struct({ code: i32 }), signalled: struct({ signal: u32 }) });

const error = enumeration({
  configuration: struct({ context: str }),
  duplicate_container: struct({ container }),
  invalid_container: struct({ container }),
  invalid_arguments: struct({ cause: str }),
  mount_busy: struct({ container }),
  umount_busy: struct({ container }),
  start_container_started: struct({ container }),
  start_container_resource: struct({ container }),
  start_container_missing_resource: struct({ container, resource: str, version: str }),
  start_container_failed: struct({ container, error: str }),
  stop_container_not_started: struct({ container }),
  invalid_repository: struct({ repository: str }),
  install_duplicate: struct({ container }),
  critical_container: struct({ container, status: exitStatus }),
  unexpected: struct({ error: str }),
});

const PERMISSIONS = [
  "ident",
  "inspect",
  "install",
  "kill",
  "list",
  "notifications",
  "mount",
  "repositories",
  "shutdown",
  "start",
  "start_command",
  "token_create",
  "token_verification",
  "umount",
  "uninstall",
];
const permissions: Check = (v, p) => {
  if (v === "full") return;
  array((x, q) => void (PERMISSIONS.includes(x as string) || fail(q, `unknown permission ${String(x)}`)))(
    v,
    p,
  );
};
const mountOptions: Check = (v, p) => {
  str(v, p);
  for (const o of (v as string).split(",").filter((x) => x !== ""))
    if (!["rw", "noexec", "nosuid", "nodev", "rec"].includes(o.trim())) fail(p, `unknown mount option ${o}`);
};
const mount: Check = (v, p) => {
  if (!isObj(v) || typeof v.type !== "string") fail(p, "expected a mount tagged by type");
  const { type, ...rest } = v as Record<string, V>;
  const unit = struct({});
  const variants: Record<string, Check> = {
    bind: struct({ host: str }, { options: mountOptions }),
    resource: struct({ name: str, version: str, dir: str }, { options: mountOptions }),
    tmpfs: struct({
      size: (x, q) => void (typeof x === "number" || typeof x === "string" || fail(q, "size")),
    }),
    dev: unit,
    persist: unit,
    proc: unit,
    sockets: unit,
    sysfs: unit,
  };
  const c = variants[type as string];
  if (!c) fail(p, `unknown mount type ${String(type)}`);
  c!(rest, p);
};
const output = (v: V, p: string): void =>
  void (["discard", "pipe", "inherit"].includes(v as string) || fail(p, "unknown output"));
const record =
  (c: Check): Check =>
  (v, p) => {
    anyObject(v, p);
    for (const [k, x] of Object.entries(v as object)) c(x, `${p}.${k}`);
  };

/** Northstar's Manifest (deny_unknown_fields), with its strict sub-structs checked. */
const manifest = struct(
  { name: str, version: str, uid: int(1, 65535), gid: int(1, 65535) },
  {
    console: struct({ permissions }),
    init: str,
    args: array(str),
    env: record(str),
    sched: anyObject,
    mounts: record(mount),
    autostart: (v, p) => void (["relaxed", "critical"].includes(v as string) || fail(p, "autostart")),
    cgroups: anyObject,
    network: (v, p) => void (v === "host" || isObj(v) || fail(p, "network")),
    seccomp: anyObject,
    selinux: anyObject,
    capabilities: array(str),
    suppl_groups: array(str),
    rlimits: anyObject,
    sockets: anyObject,
    io: struct({ stdout: output, stderr: output }),
    custom: () => undefined,
  },
);

const containerData = struct({
  manifest,
  repository: str,
  mounted: bool,
  process: nullable(struct({ pid: u32, uptime: u64, statistics: anyObject })),
});

const containerResult = enumeration({ ok: struct({ container }), error: struct({ container, error }) });

const request = enumeration({
  inspect: struct({ container }),
  ident: UNIT,
  install: struct({ repository: str, size: u64 }),
  kill: struct({ container, signal: i32 }),
  list: UNIT,
  mount: struct({ containers: array(container) }),
  repositories: UNIT,
  shutdown: UNIT,
  start: struct({ container, init: nullable(str), arguments: array(str), environment: record(str) }),
  token_create: struct({ target: str, shared: base64 }),
  token_verify: struct({ token: base64, user: str, shared: base64 }),
  umount: struct({ containers: array(container) }),
  uninstall: struct({ container, wipe: bool }),
});

const response = enumeration({
  ident: container,
  inspect: enumeration({
    ok: struct({ container, data: containerData }),
    error: struct({ container, error }),
  }),
  install: enumeration({ ok: struct({ container }), error: struct({ error }) }),
  kill: containerResult,
  list: array(container),
  mount: array(containerResult),
  permission_denied: request,
  repositories: array(str),
  shutdown: UNIT,
  start: containerResult,
  token: base64,
  token_verification: (v, p) =>
    void (["Ok", "Invalid", "Expired", "Future"].includes(v as string) || fail(p, "result")),
  umount: array(containerResult),
  uninstall: containerResult,
});

const u64OrNull = nullable(u64);
const notification = enumeration({
  c_group: tuple(
    container,
    enumeration({
      memory: struct({
        low: u64OrNull,
        high: u64OrNull,
        max: u64OrNull,
        oom: u64OrNull,
        oom_kill: u64OrNull,
      }),
    }),
  ),
  exit: tuple(container, exitStatus),
  install: container,
  shutdown: UNIT,
  started: container,
  uninstall: container,
});

const message: Check = (v, p) => {
  if (!isObj(v)) fail(p, "expected an object");
  const keys = Object.keys(v as object);
  if (keys.length !== 1) fail(p, `expected one message key, got ${keys.join(",")}`);
  const k = keys[0]!;
  const o = v as Record<string, V>;
  switch (k) {
    case "connect":
      return struct({ version: str, subscribe_notifications: bool })(o[k], "connect");
    case "connect_ack":
      return void (o[k] === null || fail("connect_ack", "expected null"));
    case "connect_nack":
      return enumeration({ invalid_protocol_version: struct({ version: str }), permission_denied: UNIT })(
        o[k],
        "connect_nack",
      );
    case "request":
      return request(o[k], "request");
    case "response":
      return response(o[k], "response");
    case "notification":
      return notification(o[k], "notification");
    default:
      fail(p, `unknown message ${k}`);
  }
};

/** Decodes one line as Northstar 0.9.2's client does, or throws. Returns the parsed JSON. */
export function decodeNorthstarLine(line: string): Record<string, unknown> {
  let value: V;
  try {
    value = JSON.parse(line);
  } catch (e) {
    return fail("", `malformed JSON: ${(e as Error).message}`);
  }
  message(value, "");
  return value as Record<string, unknown>;
}

/**
 * A connection made exactly as Northstar 0.9.2's client makes it (`connect` without Skiff's
 * `dialect`). Every line read goes through `decodeNorthstarLine`; the first that fails is
 * recorded in `violations` and thrown from `next`.
 */
export class StrictNorthstarPeer {
  readonly reader: LineReader;
  readonly closed: Promise<void>;
  readonly violations: string[] = [];

  private constructor(readonly socket: Socket) {
    this.reader = new LineReader(socket, 64 * 1024 * 1024);
    this.closed = new Promise((resolve) => socket.once("close", () => resolve()));
    socket.on("error", () => undefined);
  }

  static async open(url: string): Promise<StrictNorthstarPeer> {
    const socket = connect({ path: url.replace(/^unix:\/\//, "") });
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
    return new StrictNorthstarPeer(socket);
  }

  /** Wraps an already connected socket (a container's descriptor, a test's socket pair). */
  static wrap(socket: Socket): StrictNorthstarPeer {
    return new StrictNorthstarPeer(socket);
  }

  send(value: unknown): void {
    this.socket.write((typeof value === "string" ? value : JSON.stringify(value)) + "\n");
  }

  /** The next line, decoded strictly; null at EOF (or when the daemon closed the connection). */
  async next(): Promise<Record<string, unknown> | null> {
    let line: string | null;
    try {
      line = await within(this.reader.nextLine(), {
        timeoutMs: NEXT_TIMEOUT_MS,
        what: "the next line from the daemon",
      });
    } catch (e) {
      if (e instanceof WaitTimeoutError) throw e;
      return null;
    }
    if (line === null) return null;
    try {
      return decodeNorthstarLine(line);
    } catch (e) {
      this.violations.push(`${(e as Error).message}: ${line.slice(0, 300)}`);
      throw e;
    }
  }

  async connect(subscribe: boolean): Promise<Record<string, unknown> | null> {
    this.send({ connect: { version: "0.9.2", subscribe_notifications: subscribe } });
    return this.next();
  }

  /** Sends a request and returns the response, collecting the notifications read meanwhile. */
  async request(
    request: unknown,
    notifications: Record<string, unknown>[] = [],
  ): Promise<Record<string, unknown>> {
    this.send({ request });
    for (;;) {
      const m = await this.next();
      if (m === null) throw new Error("connection closed before the response");
      if ("response" in m) return m.response as Record<string, unknown>;
      notifications.push(m.notification as Record<string, unknown>);
    }
  }

  close(): void {
    this.socket.destroy();
  }
}
