/**
 * The daemon's runtime: the event loop, the state owner, the console and the executors that
 * carry out the owner's steps. `Runtime.start` brings them up; `stopped` resolves after an
 * orderly shutdown (listeners closed, `shutdown` notified, state flushed).
 *
 * Request path: console session -> `console_request` event -> StateOwner transition -> steps ->
 * executors (here: reply, notify, shutdown) -> the session writes the response.
 */
import type { Logger } from "pino";
import type { Request, Response } from "../protocol/messages.js";
import type { DaemonConfig } from "./config/schema.js";
import { NotificationHub } from "./console/hub.js";
import { ConsoleServer } from "./console/server.js";
import { EventLoop } from "./events/loop.js";
import type { DaemonEvent, Peer } from "./events/types.js";
import { initialState } from "./state/model.js";
import { StateOwner } from "./state/owner.js";
import type { Step } from "./state/steps.js";

export class Runtime {
  readonly loop: EventLoop<DaemonEvent>;
  readonly hub = new NotificationHub();
  readonly console: ConsoleServer;
  readonly owner: StateOwner;
  private loopDone: Promise<void> = Promise.resolve();
  private shutdownStarted = false;
  private resolveStopped!: () => void;
  /** Resolves once the runtime has shut down completely. */
  readonly stopped = new Promise<void>((resolve) => (this.resolveStopped = resolve));

  private constructor(
    readonly config: DaemonConfig,
    private readonly log: Logger,
  ) {
    this.loop = new EventLoop<DaemonEvent>({
      capacity: config.eventBufferSize,
      onHandlerError: (subscriber, event, error) =>
        log.error({ err: error, subscriber, event: (event as DaemonEvent).kind }, "event handler failed"),
    });
    this.owner = new StateOwner(initialState(config.repositories.map((r) => r.id)), (step, event) =>
      this.execute(step, event),
    );
    this.console = new ConsoleServer({
      listeners: config.listeners,
      notificationBufferSize: config.notificationBufferSize,
      hub: this.hub,
      dispatch: (peer, request) => this.dispatch(peer, request),
      log: log.child({ room: "console" }),
    });
  }

  static async start(config: DaemonConfig, log: Logger): Promise<Runtime> {
    const runtime = new Runtime(config, log);
    runtime.loop.subscribe("state", ["console_request", "shutdown", "container"], (e) =>
      runtime.owner.handle(e),
    );
    runtime.loopDone = runtime.loop.run();
    await runtime.console.listen();
    return runtime;
  }

  /** Hands a request to the state owner through the loop and waits for its response. */
  private dispatch(peer: Peer, request: Request): Promise<Response> {
    return new Promise<Response>((resolve, reject) => {
      this.loop
        .enqueue({ kind: "console_request", peer, request, reply: resolve })
        .catch(() => reject(new Error("daemon is shutting down")));
    });
  }

  /** Asks for an orderly shutdown (signals, critical failures). Safe to call repeatedly. */
  requestShutdown(reason: string): void {
    this.loop.enqueue({ kind: "shutdown", reason }).catch(() => undefined);
  }

  // The executor map: each step type has exactly one executor.
  private execute(step: Step, event: DaemonEvent): void {
    switch (step.type) {
      case "reply":
        if (event.kind === "console_request") event.reply(step.response);
        return;
      case "notify":
        this.hub.broadcast(step.notification);
        return;
      case "shutdown":
        void this.shutdown(step.reason);
        return;
    }
  }

  private async shutdown(reason: string): Promise<void> {
    if (this.shutdownStarted) return;
    this.shutdownStarted = true;
    this.log.info(`shutting down: ${reason}`);
    // Let the reply to a `shutdown` request reach its session before the sessions close.
    await new Promise((resolve) => setImmediate(resolve));
    this.hub.broadcast({ type: "shutdown" });
    await this.console.close();
    this.loop.close();
    await this.loopDone;
    this.log.info("shutdown complete");
    this.resolveStopped();
  }
}
