/**
 * The runtime state: what the daemon knows about repositories and containers. Only the state
 * owner (state/owner.ts) replaces it, one event at a time; transitions are pure functions.
 */
import type { ContainerId } from "../../protocol/container.js";
import type { ContainerData, RepositoryId } from "../../protocol/messages.js";

export interface ContainerRecord {
  id: ContainerId;
  repository: RepositoryId;
  manifest: ContainerData["manifest"];
  mounted: boolean;
}

export interface RuntimeState {
  readonly repositories: readonly RepositoryId[];
  readonly containers: ReadonlyMap<ContainerId, ContainerRecord>;
  /** Set once shutdown has begun; requests that change things are refused from then on. */
  readonly shuttingDown: boolean;
}

export function initialState(repositories: readonly RepositoryId[]): RuntimeState {
  return { repositories: [...repositories].sort(), containers: new Map(), shuttingDown: false };
}
