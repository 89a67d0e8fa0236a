/**
 * skiffd under systemd (`Type=notify`, contrib/systemd/skiffd.service): `READY=1` once the console
 * listens, `WATCHDOG=1` keep-alives while the event loop makes progress (watchdog.ts), and
 * `STOPPING=1` when the shutdown begins.
 *
 * Node has no Unix datagram sockets, so the datagrams are sent by native/notify (skiff-notify), a
 * long-lived child fed one message per line on its stdin. One process for the daemon's life, not
 * a `systemd-notify` per message: systemd attributes a datagram to the service by its sender,
 * and a sender that has already exited may not be attributed (the race sd_notify(3) describes).
 * skiff-notify names skiffd's pid in the datagram's credentials, so `NotifyAccess=main` holds.
 *
 * Without NOTIFY_SOCKET nothing is spawned and every call does nothing.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import type { Logger } from "pino";
import { nativeBinary } from "../monitor/native.js";
import { LoopLiveness, watchdogIntervalMs, type LoopProgress } from "./watchdog.js";

/** skiff-notify's limit for one message (native/notify/notify.c). */
const MAX_MESSAGE = 4096;

export interface SystemdNotifyOptions {
  env: NodeJS.ProcessEnv;
  log: Logger;
  /** The daemon event loop's progress, read at every watchdog tick. */
  progress: () => LoopProgress;
  /** Path of skiff-notify (default: the built native/build/skiff-notify). */
  helper?: string;
}

export class SystemdNotifier {
  private timer: NodeJS.Timeout | undefined;
  private withheld = false;

  private constructor(
    private readonly child: ChildProcess,
    private readonly log: Logger,
  ) {}

  /** Spawns skiff-notify when systemd gave a NOTIFY_SOCKET; undefined otherwise. */
  static start(options: SystemdNotifyOptions): SystemdNotifier | undefined {
    const socket = options.env.NOTIFY_SOCKET;
    if (socket === undefined || socket === "") return undefined;
    const child = spawn(options.helper ?? nativeBinary("skiff-notify"), [], {
      stdio: ["pipe", "ignore", "pipe"],
      env: { NOTIFY_SOCKET: socket, SKIFF_NOTIFY_PARENT: String(process.pid) },
    });
    const log = options.log;
    const notifier = new SystemdNotifier(child, log);
    child.once("error", (e) => log.error({ err: e }, "systemd: cannot run skiff-notify"));
    child.stdin.on("error", (e) => log.warn({ err: e }, "systemd: skiff-notify's pipe failed"));
    createInterface({ input: child.stderr, crlfDelay: Infinity }).on("line", (line) => log.warn(line));
    child.once("exit", (code, signal) => {
      notifier.stopWatchdog();
      if (code !== 0) log.warn(`systemd: skiff-notify exited with ${signal ?? `code ${code}`}`);
    });
    const intervalMs = watchdogIntervalMs(options.env, process.pid);
    if (intervalMs !== undefined) notifier.startWatchdog(intervalMs, options.progress);
    return notifier;
  }

  /** The console listens: the service is up. */
  ready(): void {
    this.send("READY=1");
  }

  /** The shutdown has begun; no keep-alive after this. */
  stopping(): void {
    this.stopWatchdog();
    this.send("STOPPING=1");
  }

  /** After the shutdown: no more messages; skiff-notify exits at the end of its input. */
  close(): void {
    this.stopWatchdog();
    this.child.stdin?.end();
  }

  private startWatchdog(intervalMs: number, progress: () => LoopProgress): void {
    const liveness = new LoopLiveness();
    this.log.info(`systemd watchdog: a keep-alive every ${intervalMs} ms`);
    this.timer = setInterval(() => {
      if (liveness.tick(progress())) {
        if (this.withheld) this.log.warn("systemd watchdog: the event loop moves again");
        this.withheld = false;
        this.send("WATCHDOG=1");
      } else if (!this.withheld) {
        this.withheld = true;
        this.log.error(
          "systemd watchdog: the event loop processed nothing since the last tick; no keep-alive",
        );
      }
    }, intervalMs);
    this.timer.unref();
  }

  private stopWatchdog(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private send(message: string): void {
    if (message.includes("\n") || Buffer.byteLength(message) > MAX_MESSAGE) {
      throw new RangeError("an sd_notify message is one line of at most 4096 bytes");
    }
    const stdin = this.child.stdin;
    if (!stdin || stdin.destroyed || stdin.writableEnded) return;
    stdin.write(`${message}\n`);
  }
}
