#!/usr/bin/env node
/**
 * skiffd: the Skiff daemon. `skiffd [--config FILE]`; without a file it runs on the embedded
 * default configuration (state under /var/lib/skiff, one Unix socket with full permissions).
 */
import { mkdir } from "node:fs/promises";
import { parseArgs } from "node:util";
import { setFlagsFromString } from "node:v8";
import { PROTOCOL_VERSION } from "../protocol/version.js";
import { SKIFF_VERSION } from "../common/version.js";
import type { Runtime } from "./runtime.js";
import { messageOf } from "../common/errors.js";

// V8 grows the young generation (two semi-spaces) from 1 MiB up to 16 MiB each while allocation runs
// high, and keeps the pages once the daemon idles again: after a burst of console requests that was about
// 12 MiB of skiffd's idle RSS (`npm run bench -- console`). A growth factor of 1 keeps the semi-spaces at
// their initial size; the price is more frequent scavenges, each of them short. The flag is read at every
// growth decision, so setting it here, before the daemon's modules are even loaded, is in time. An operator
// who sizes the young generation on node's command line (docs/footprint.md) keeps that choice.
const youngGenerationSized = [...process.execArgv, process.env.NODE_OPTIONS ?? ""].some((a) =>
  /semi[-_]space/.test(a),
);
if (!youngGenerationSized) setFlagsFromString("--semi-space-growth-factor=1");

const USAGE = `usage: skiffd [--config FILE] [--keep-containers] [--version] [--help]

  -c, --config FILE     TOML configuration (default: the embedded default)
      --keep-containers at shutdown, leave containers running under their monitors; the next
                        skiffd re-adopts them (upgrade restarts)
  -V, --version         print Skiff's version and the console protocol version
  -h, --help            show this help`;

async function main(): Promise<number> {
  let args;
  try {
    args = parseArgs({
      options: {
        config: { type: "string", short: "c" },
        "keep-containers": { type: "boolean" },
        help: { type: "boolean", short: "h" },
        version: { type: "boolean", short: "V" },
      },
      strict: true,
    });
  } catch (e) {
    process.stderr.write(`skiffd: ${messageOf(e)}\n${USAGE}\n`);
    return 2;
  }
  if (args.values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (args.values.version) {
    process.stdout.write(`skiffd ${SKIFF_VERSION} (console protocol ${PROTOCOL_VERSION})\n`);
    return 0;
  }

  // The daemon's modules load only now: after the V8 flag above, and not at all for --help or --version.
  const [
    { ConfigError, loadConfig },
    { acquireInstanceLock, LockHeldError },
    { createLogger },
    runtimeModule,
    { SystemdNotifier },
  ] = await Promise.all([
    import("./config/load.js"),
    import("./lock.js"),
    import("./logger.js"),
    import("./runtime.js"),
    import("./systemd/notify.js"),
  ]);
  let config;
  try {
    config = await loadConfig(args.values.config);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`skiffd: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  const log = createLogger(config.debug.logLevel);
  // Last line of defence only: every promise the daemon makes has its handler. One that slipped
  // through is a bug to report loudly, but must not end the daemon (Node's default): that would
  // drop the supervision of every container for one operation's failure.
  process.on("unhandledRejection", (reason) => {
    log.fatal({ err: reason }, "BUG: unhandled promise rejection; the daemon goes on");
  });
  for (const note of config.notes) log.info({ config: args.values.config }, note);

  await mkdir(config.stateDir, { recursive: true, mode: 0o700 });
  let lock;
  try {
    lock = await acquireInstanceLock(config.stateDir);
  } catch (e) {
    if (e instanceof LockHeldError) {
      log.fatal(e.message);
      return 1;
    }
    throw e;
  }

  let runtime: Runtime;
  try {
    runtime = await runtimeModule.Runtime.start(config, log, {
      // Absent, the config's keep_containers decides (`false` here would override it).
      ...(args.values["keep-containers"] === true ? { keepContainers: true } : {}),
    });
  } catch (e) {
    log.fatal({ err: e }, "startup failed");
    await lock.release();
    return 1;
  }
  log.info(
    { protocol: PROTOCOL_VERSION, config: args.values.config ?? "embedded default" },
    "skiffd running",
  );
  // Under systemd (Type=notify): READY=1 now that the console listens, keep-alives, STOPPING=1.
  const systemd = SystemdNotifier.start({
    env: process.env,
    log: log.child({ room: "systemd" }),
    progress: () => runtime.loopProgress(),
  });
  systemd?.ready();
  void runtime.stopping.then(() => systemd?.stopping());

  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.on(signal, () => runtime.requestShutdown({ kind: "host", cause: `received ${signal}` }));
  }
  await runtime.stopped;
  systemd?.close();
  await lock.release();
  return runtime.exitCode;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`skiffd: fatal: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  },
);
