#!/usr/bin/env node
/**
 * skiffd: the Skiff daemon. `skiffd [--config FILE]`; without a file it runs on the embedded
 * default configuration (state under /var/lib/skiff, one Unix socket with full permissions).
 */
import { mkdir } from "node:fs/promises";
import { parseArgs } from "node:util";
import { ConfigError, loadConfig } from "./config/load.js";
import { acquireInstanceLock, LockHeldError } from "./lock.js";
import { createLogger } from "./logger.js";
import { Runtime } from "./runtime.js";
import { PROTOCOL_VERSION } from "../protocol/version.js";
import { SKIFF_VERSION } from "../common/version.js";

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
    process.stderr.write(`skiffd: ${(e as Error).message}\n${USAGE}\n`);
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
    runtime = await Runtime.start(config, log, {
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

  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.on(signal, () => runtime.requestShutdown(`received ${signal}`));
  }
  await runtime.stopped;
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
