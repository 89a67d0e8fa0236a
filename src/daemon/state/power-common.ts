/**
 * Helpers shared by the power transitions (power.ts: freezer and suspend; wake.ts: locks,
 * sources, proxy channels, idle suspend).
 */
import type { ContainerId } from "../../protocol/container.js";
import type { Response, WireError } from "../../protocol/messages.js";
import type { Reply } from "../events/types.js";
import { withContainer, type ContainerRecord, type PowerRecord, type RuntimeState } from "./model.js";
import { canPower } from "./lifecycle.js";
import type { Step, Transition } from "../events/steps.js";

export type T = Transition<RuntimeState>;

export const answer = (reply: Reply | undefined, response: Response): Step[] =>
  reply ? [{ type: "reply_to", reply, response }] : [];

/** The container, if power requests may act on it (lifecycle.ts `canPower`). */
export function running(state: RuntimeState, container: ContainerId): ContainerRecord | undefined {
  const record = state.containers.get(container);
  return canPower(record?.process) ? record : undefined;
}

export function withPower(state: RuntimeState, record: ContainerRecord, power: PowerRecord): RuntimeState {
  return withContainer(state, { ...record, process: { ...record.process!, power } });
}

export const notRunning = (container: ContainerId): WireError => ({
  type: "stop_container_not_started",
  container,
});

/** The power requests' plain `ok`/`error` answer (responses.ts). */
export { containerResponse as simple } from "../responses.js";

export function notify(
  container: ContainerId,
  state: "asleep" | "awake",
  sequence: number,
  now: number,
): Step {
  return { type: "notify", notification: { type: "power", container, state, sequence, time_ms: now } };
}

/** The freezer answered (suspend or pause). */
