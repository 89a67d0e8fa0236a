/**
 * Every event the daemon's loop carries. Producers (console sessions, monitors, cgroup
 * watchers, timers, signal handlers, finished jobs) create them; the state owner consumes them.
 */
import type { ContainerId } from "../../protocol/container.js";
import type { ExitStatus, MemoryNotification, Request, Response } from "../../protocol/messages.js";

/** Who sent a console request: a host client, or a container through its own console. */
export type Peer = { kind: "extern"; address: string } | { kind: "container"; container: ContainerId };

/** What happened to a container, reported by executors, monitors and watchers. */
export type ContainerEvent =
  | { type: "started" }
  | { type: "exit"; status: ExitStatus }
  | { type: "installed" }
  | { type: "uninstalled" }
  | { type: "cgroup_memory"; memory: MemoryNotification }
  | { type: "power"; state: "asleep" | "awake" };

export type DaemonEvent =
  | { kind: "console_request"; peer: Peer; request: Request; reply: (response: Response) => void }
  | { kind: "shutdown"; reason: string }
  | { kind: "container"; container: ContainerId; event: ContainerEvent };

export type DaemonEventKind = DaemonEvent["kind"];
