/**
 * Runtime handlers (Kubernetes RuntimeClass, docs/cri.md "Runtime handlers"): each OCI runtime
 * the host can run is a named handler, `runc` and `crun` by default, or the ones `[cri.
 * runtime_handlers.<name>]` configures. A pod names one (`RunPodSandbox.runtime_handler`) or none
 * (""), and then it is spread across the live handlers; a dead handler is reported in `Status`
 * and refused, never used.
 *
 * Liveness is what `detectOciRuntime` (daemon/oci/runtime.ts) decides for the daemon's own
 * runtime: the binary is there, `--version` answers in time naming the expected runtime, and the
 * host's cgroup layout lets it work (crun refuses hybrid hosts). `check()` probes every handler
 * afresh (Status does, for each call); `pick()` trusts the last probe of a live handler and
 * probes again only when the handler it would use is dead or was never probed, so a binary put
 * back is used again without a daemon restart and a pick costs nothing while all is well.
 *
 * Spreading (`spread`, pure): the live handler with the fewest pods, as the caller's `load`
 * counts them; ties go round robin, to the first tied handler after the one the previous spread
 * chose (in configuration order). Without a `load` every count is 0, so it is plain round robin.
 * This is gate's `DistributeProcesses`, least-loaded first; a handler that died since the last
 * probe is found at the next pick that lands on it, which then probes and picks again.
 */
import type { Logger } from "pino";
import type { CgroupLayout } from "../daemon/cgroups/layout.js";
import {
  detectOciRuntime,
  findOnPath,
  type OciRuntimeInfo,
  type OciRuntimeKind,
} from "../daemon/oci/runtime.js";
import { messageOf } from "../common/errors.js";

/** `--version` answers in milliseconds, in over a second under QEMU TCG; a stuck one must not hang Status. */
export const DEFAULT_HANDLER_PROBE_TIMEOUT_MS = 5000;

/** One `[cri.runtime_handlers.<name>]`: the handler's name, its runtime, and the binary. */
export interface RuntimeHandlerConfig {
  /** RuntimeClass `handler`: a DNS label (lowercase letters, digits, `-`; at most 63). */
  name: string;
  kind: OciRuntimeKind;
  /** Absolute path; absent: `kind` looked up on PATH. */
  path?: string;
}

/** A handler as the last probe saw it. */
export interface RuntimeHandlerState {
  name: string;
  kind: OciRuntimeKind;
  /** The binary (absolute, or the bare kind when it is not on PATH). */
  path: string;
  /** Never probed yet: `alive` false and `problem` "not probed yet". */
  alive: boolean;
  /** What `--version` named, when alive. */
  version?: string;
  /** Why it is dead, when it is. */
  problem?: string;
}

/** The handler a pod runs under: its name and the runtime the monitor must exec for it. */
export interface PickedHandler {
  name: string;
  runtime: OciRuntimeInfo;
}

export type RuntimeHandlerErrorKind = "unknown" | "dead" | "none_alive";

/** A pick refused; the CRI endpoint answers `kind` as NOT_FOUND, FAILED_PRECONDITION, UNAVAILABLE. */
export class RuntimeHandlerError extends Error {
  override name = "RuntimeHandlerError";
  constructor(
    readonly kind: RuntimeHandlerErrorKind,
    message: string,
  ) {
    super(message);
  }
}

export interface RuntimeHandlersOptions {
  /** `[cri.runtime_handlers]`; absent or empty: runc and crun, each when found on PATH. */
  configured?: readonly RuntimeHandlerConfig[];
  /** The daemon's `[runtime]`: its path is the default handler of its kind. */
  daemonRuntime: { kind: OciRuntimeKind; path?: string };
  layout: CgroupLayout;
  probeTimeoutMs?: number;
  log: Logger;
}

const DEFAULT_KINDS: readonly OciRuntimeKind[] = ["runc", "crun"];

/**
 * The least-loaded live handler; ties to the first tied one after `previous` in `live`'s order
 * (cyclic), so equal loads take turns. `live` must not be empty.
 */
export function spread(
  live: readonly string[],
  load: (handler: string) => number,
  previous: string | undefined,
): string {
  if (live.length === 0) throw new Error("spread: no live handler");
  const loads = live.map(load);
  const least = Math.min(...loads);
  const start = previous === undefined ? 0 : live.indexOf(previous) + 1; // -1 + 1: from the first
  for (let step = 0; step < live.length; step++) {
    const i = (start + step) % live.length;
    if (loads[i] === least) return live[i]!;
  }
  return live[0]!; // unreachable: `least` is one of `loads`
}

export class RuntimeHandlers {
  // INVARIANTS: `states` has one entry per handler, in configuration order, and only `probe()`
  // replaces them; `inflight` makes concurrent checks share one probe of all handlers, so a
  // result is at most one probe old. `previous` is the last handler `spread` chose.
  private readonly states: RuntimeHandlerState[];
  private readonly infos = new Map<string, OciRuntimeInfo>();
  private inflight: Promise<RuntimeHandlerState[]> | undefined;
  private previous: string | undefined;
  private probed = false;

  private constructor(
    private readonly configs: readonly Required<RuntimeHandlerConfig>[],
    private readonly layout: CgroupLayout,
    private readonly probeTimeoutMs: number,
    private readonly log: Logger,
  ) {
    this.states = configs.map((c) => ({ ...c, alive: false, problem: "not probed yet" }));
  }

  /** Finds the handlers (configured, or runc and crun where found) and probes them once. */
  static async detect(options: RuntimeHandlersOptions): Promise<RuntimeHandlers> {
    const configs: Required<RuntimeHandlerConfig>[] = [];
    const own = options.daemonRuntime;
    if (options.configured !== undefined && options.configured.length > 0) {
      for (const c of options.configured) {
        const path = c.path ?? (c.kind === own.kind ? own.path : undefined) ?? (await findOnPath(c.kind));
        configs.push({ name: c.name, kind: c.kind, path });
      }
    } else {
      for (const kind of DEFAULT_KINDS) {
        const path = kind === own.kind && own.path !== undefined ? own.path : await findOnPath(kind);
        // A default handler whose binary is not installed is not a handler of this host; the
        // daemon's own kind is always one (its absence is the toolchain's problem too).
        if (path.startsWith("/") || kind === own.kind) configs.push({ name: kind, kind, path });
      }
    }
    const handlers = new RuntimeHandlers(
      configs,
      options.layout,
      options.probeTimeoutMs ?? DEFAULT_HANDLER_PROBE_TIMEOUT_MS,
      options.log,
    );
    const states = await handlers.check();
    for (const s of states) {
      if (s.alive)
        options.log.info(
          { handler: s.name, path: s.path },
          `runtime handler ${s.name}: ${s.kind} ${s.version}`,
        );
      else
        options.log.warn(
          { handler: s.name, path: s.path },
          `runtime handler ${s.name} is dead: ${s.problem}`,
        );
    }
    return handlers;
  }

  /** Every handler as the last probe saw it, in configuration order. */
  list(): RuntimeHandlerState[] {
    return this.states.map((s) => ({ ...s }));
  }

  /** The runtime of a live handler (what the monitor execs for a container under it). */
  runtimeOf(name: string): OciRuntimeInfo | undefined {
    return this.infos.get(name);
  }

  /** Probes every handler afresh (one probe of all at a time; callers meanwhile share it). */
  check(): Promise<RuntimeHandlerState[]> {
    this.inflight ??= this.probe().finally(() => (this.inflight = undefined));
    return this.inflight;
  }

  /**
   * The handler a pod asking for `requested` runs under. A named handler must be configured and
   * alive; "" spreads across the live ones by `load` (the pods each handler runs now, as the
   * pod store counts them). Throws RuntimeHandlerError: `unknown`, `dead` (with the reason) or
   * `none_alive`.
   */
  async pick(requested: string, load: (handler: string) => number = () => 0): Promise<PickedHandler> {
    if (requested !== "") {
      const index = this.states.findIndex((s) => s.name === requested);
      if (index < 0) {
        throw new RuntimeHandlerError(
          "unknown",
          `runtime handler ${JSON.stringify(requested)} is not configured (this node has: ${this.names()})`,
        );
      }
      if (!this.states[index]!.alive) await this.check();
      const state = this.states[index]!;
      const runtime = this.infos.get(requested);
      if (!state.alive || runtime === undefined) {
        throw new RuntimeHandlerError("dead", `runtime handler ${requested} is dead: ${state.problem}`);
      }
      return { name: requested, runtime };
    }
    if (!this.probed || !this.states.some((s) => s.alive)) await this.check();
    const live = this.states.filter((s) => s.alive).map((s) => s.name);
    if (live.length === 0) {
      throw new RuntimeHandlerError(
        "none_alive",
        `no runtime handler is alive: ${this.states.map((s) => `${s.name}: ${s.problem}`).join("; ")}`,
      );
    }
    const name = spread(live, load, this.previous);
    this.previous = name;
    return { name, runtime: this.infos.get(name)! };
  }

  private names(): string {
    return this.states.length === 0 ? "none" : this.states.map((s) => s.name).join(", ");
  }

  private async probe(): Promise<RuntimeHandlerState[]> {
    const results = await Promise.all(this.configs.map((c) => this.probeOne(c)));
    results.forEach((state, i) => {
      const before = this.states[i]!;
      if (this.probed && before.alive !== state.alive) {
        if (state.alive) this.log.info(`runtime handler ${state.name} is alive again`);
        else this.log.error(`runtime handler ${state.name} died: ${state.problem}`);
      }
      this.states[i] = state;
    });
    this.probed = true;
    return this.list();
  }

  private async probeOne(config: Required<RuntimeHandlerConfig>): Promise<RuntimeHandlerState> {
    const timeout = AbortSignal.timeout(this.probeTimeoutMs);
    try {
      const info = await detectOciRuntime({ kind: config.kind, path: config.path }, this.layout, timeout);
      this.infos.set(config.name, info);
      return { ...config, alive: true, version: info.version };
    } catch (e) {
      this.infos.delete(config.name);
      const problem = timeout.aborted
        ? `OCI runtime ${config.kind}: ${config.path} gave no answer to --version within ${this.probeTimeoutMs} ms`
        : messageOf(e);
      return { ...config, alive: false, problem };
    }
  }
}
