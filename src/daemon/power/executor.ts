/**
 * Executes power steps: freezes and thaws through the Freezer, power timers (maximum sleep,
 * lock timeouts, idle checks), wake source watchers and proxy wake channels. Reports back as
 * container events; never decides anything itself (state/power.ts does).
 *
 * INVARIANTS:
 * - Per container, one freezer operation at a time (the state machine guarantees it).
 * - A proxy forwards to a container only while it is awake: `awake(container)` is pending from
 *   a completed suspend freeze until the next thaw.
 * - Everything a container had (timers, watchers, channels) goes at its `release_power` step.
 * - What it acts on (an instance's cgroup and init pid) comes with the `attach_power` step when
 *   the instance runs; it talks to the container executor only through steps and events.
 */
import type { Logger } from "pino";
import type { ContainerId } from "../../protocol/container.js";
import type { PowerEvent, Reply } from "../events/types.js";
import type { PowerStep } from "../events/steps.js";
import { Freezer } from "./freezer.js";
import { openProxyChannel, parseProxyTarget, type ProxyChannel } from "./proxy.js";
import { watchWakeSource, type WakeSourceHandle } from "./wake-sources.js";
import type { CgroupLayout } from "../cgroups/index.js";
import { bestEffort, messageOf } from "../errors.js";

export interface PowerExecutorOptions {
  layout: CgroupLayout;
  emit: (container: ContainerId, event: PowerEvent) => Promise<void>;
  /** A freeze must complete within this time, else the cgroup is thawed and the freeze fails. */
  freezeTimeoutMs: number;
  /** Test seams (config `debug.freeze_hold`, `debug.freeze_fail`): the freezer's intermediate state. */
  freezeHoldMs: number;
  freezeFail: boolean;
  log: Logger;
}

interface Deferred {
  promise: Promise<void>;
  resolve: () => void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

export class PowerExecutor {
  private readonly freezer: Freezer;
  /** The running instances' cgroups and init pids (`attach_power` to `release_power`). */
  private readonly instances = new Map<ContainerId, { cgroupPath: string; pid: number }>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly sources = new Map<string, WakeSourceHandle>();
  private readonly proxies = new Map<string, ProxyChannel>();
  /** Freezes in flight: a kill or the end of the container aborts them (the freezer then thaws). */
  private readonly freezing = new Map<ContainerId, AbortController>();
  /** Containers frozen by a suspend: proxies wait on the deferred until the thaw. */
  private readonly asleep = new Map<ContainerId, Deferred>();

  constructor(private readonly o: PowerExecutorOptions) {
    this.freezer = new Freezer(o.layout);
  }

  execute(step: PowerStep): void {
    const key = (k: string): string => `${step.container}\0${k}`;
    switch (step.type) {
      case "attach_power":
        this.instances.set(step.container, { cgroupPath: step.cgroupPath, pid: step.pid });
        return;
      case "release_power":
        void this.release(step.container);
        return;
      case "thaw_killed":
        void this.thawAfterKill(step.container);
        return;
      case "freeze":
        void this.freeze(step.container, step.purpose);
        return;
      case "thaw":
        void this.thaw(step.container);
        return;
      case "power_timer": {
        clearTimeout(this.timers.get(key(step.key)));
        const timer = setTimeout(() => {
          this.timers.delete(key(step.key));
          void this.o.emit(step.container, step.event);
        }, step.delayMs);
        this.timers.set(key(step.key), timer);
        return;
      }
      case "cancel_power_timer":
        clearTimeout(this.timers.get(key(step.key)));
        this.timers.delete(key(step.key));
        return;
      case "watch_wake_source":
        void this.watch(step.container, step.name, step);
        return;
      case "unwatch_wake_source": {
        const handle = this.sources.get(key(step.name));
        this.sources.delete(key(step.name));
        void handle?.close();
        return;
      }
      case "open_proxy":
        void this.openProxy(step);
        return;
      default: {
        const unrouted: never = step;
        throw new Error(`unrouted power step ${JSON.stringify(unrouted)}`);
      }
    }
  }

  private async freeze(container: ContainerId, purpose: "suspend" | "pause"): Promise<void> {
    const instance = this.instances.get(container);
    if (!instance)
      return void this.o.emit(container, { type: "freeze_done", error: "the container is not running" });
    const abort = new AbortController();
    this.freezing.set(container, abort);
    try {
      if (purpose === "suspend") this.asleep.set(container, deferred());
      await this.freezer.freeze(instance.cgroupPath, {
        timeoutMs: this.o.freezeTimeoutMs,
        signal: abort.signal,
        onIntermediate: () => this.intermediate(),
      });
      await this.o.emit(container, { type: "freeze_done" });
    } catch (e) {
      this.wake(container);
      await this.o.emit(container, { type: "freeze_done", error: messageOf(e) });
    } finally {
      if (this.freezing.get(container) === abort) this.freezing.delete(container);
    }
  }

  private async intermediate(): Promise<void> {
    if (this.o.freezeHoldMs > 0) await new Promise((r) => setTimeout(r, this.o.freezeHoldMs));
    if (this.o.freezeFail) throw new Error("the freeze did not complete (debug.freeze_fail)");
  }

  private async thaw(container: ContainerId): Promise<void> {
    const instance = this.instances.get(container);
    try {
      if (instance) await this.freezer.thaw(instance.cgroupPath);
    } catch (e) {
      this.o.log.error({ container, err: e }, "thaw failed");
    }
    this.wake(container);
    await this.o.emit(container, { type: "thaw_done" });
  }

  private wake(container: ContainerId): void {
    this.asleep.get(container)?.resolve();
    this.asleep.delete(container);
  }

  /** Thaws a container the freezer holds, e.g. after SIGKILL (v1 delivers it only when thawed). */
  private async thawAfterKill(container: ContainerId): Promise<void> {
    // INVARIANTS: a freeze still in flight would freeze the dying container again: abort it first.
    this.freezing.get(container)?.abort(new Error("the container is being killed"));
    const instance = this.instances.get(container);
    if (instance)
      await bestEffort(this.o.log, `thawing ${container}`, this.freezer.thaw(instance.cgroupPath));
    this.wake(container);
  }

  private async watch(
    container: ContainerId,
    name: string,
    step: Extract<PowerStep, { type: "watch_wake_source" }>,
  ): Promise<void> {
    try {
      const handle = await watchWakeSource(
        step.source,
        () => void this.o.emit(container, { type: "wake", source: name }),
      );
      this.sources.set(`${container}\0${name}`, handle);
    } catch (e) {
      this.o.log.warn({ container, source: name, err: e }, "cannot watch wake source");
    }
  }

  private async openProxy(step: Extract<PowerStep, { type: "open_proxy" }>): Promise<void> {
    const { container, name } = step;
    const done = (error?: string, reply?: Reply): Promise<void> =>
      this.o.emit(container, { type: "proxy_opened", channel: name, error, reply });
    try {
      const target = parseProxyTarget(step.target);
      const channel = await openProxyChannel({
        name,
        listen: step.listen,
        target: step.target,
        framing: step.framing,
        log: this.o.log.child({ container, proxy: name }),
        resolveTarget: () => {
          const pid = this.instances.get(container)?.pid;
          if (pid === undefined) return Promise.reject(new Error(`${container} is not running`));
          // A Unix socket inside the container is reached through its init's root.
          return Promise.resolve(
            target.kind === "unix" ? { ...target, path: `/proc/${pid}/root${target.path}` } : target,
          );
        },
        beforeForward: () => this.asleep.get(container)?.promise ?? Promise.resolve(),
        onMessages: (count) => void this.o.emit(container, { type: "proxy_messages", channel: name, count }),
        // Counted but never handed over: taken off the counter, so they cannot block a suspend.
        onDropped: (count) => void this.o.emit(container, { type: "proxy_dropped", channel: name, count }),
      });
      this.proxies.set(`${container}\0${name}`, channel);
      await done(undefined, step.reply);
    } catch (e) {
      await done(messageOf(e), step.reply);
    }
  }

  /** Drops everything of a container that ended. */
  private async release(container: ContainerId): Promise<void> {
    this.freezing.get(container)?.abort(new Error("the container ended"));
    this.instances.delete(container);
    const prefix = `${container}\0`;
    const mine = <V>(map: Map<string, V>): V[] =>
      [...map.keys()]
        .filter((k) => k.startsWith(prefix))
        .map((k) => {
          const value = map.get(k)!;
          map.delete(k);
          return value;
        });
    for (const timer of mine(this.timers)) clearTimeout(timer);
    const closing = [
      ...mine(this.sources).map((h) => h.close()),
      ...mine(this.proxies).map((p) => p.close()),
    ];
    this.wake(container);
    await Promise.allSettled(closing);
  }
}
