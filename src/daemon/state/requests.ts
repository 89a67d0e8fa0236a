/**
 * Console requests as pure transitions: (state, peer, request) -> (state, steps). Requests
 * whose feature this daemon does not serve yet answer the documented `unsupported` error.
 */
import type { Request, Response } from "../../protocol/messages.js";
import type { Peer } from "../events/types.js";
import type { RuntimeState } from "./model.js";
import type { Step, Transition } from "./steps.js";

/** Northstar answers `ident` from a host client with this id. */
export const EXTERN_IDENT = "extern:0.0.0";

const reply = (state: RuntimeState, response: Response, ...more: Step[]): Transition<RuntimeState> => ({
  state,
  steps: [{ type: "reply", response }, ...more],
});

export function handleRequest(state: RuntimeState, peer: Peer, request: Request): Transition<RuntimeState> {
  switch (request.type) {
    case "ident":
      return reply(state, {
        type: "ident",
        container: peer.kind === "container" ? peer.container : EXTERN_IDENT,
      });
    case "list":
      return reply(state, { type: "list", containers: [...state.containers.keys()].sort() });
    case "repositories":
      return reply(state, { type: "repositories", repositories: [...state.repositories] });
    case "inspect": {
      const record = state.containers.get(request.container);
      if (!record) {
        return reply(state, {
          type: "inspect",
          result: {
            type: "error",
            container: request.container,
            error: { type: "invalid_container", container: request.container },
          },
        });
      }
      return reply(state, {
        type: "inspect",
        result: {
          type: "ok",
          container: record.id,
          data: {
            manifest: record.manifest,
            repository: record.repository,
            mounted: record.mounted,
            process: null,
            state: record.mounted ? "mounted" : "installed",
          },
        },
      });
    }
    case "shutdown":
      if (state.shuttingDown) return reply(state, { type: "shutdown" });
      return reply(
        { ...state, shuttingDown: true },
        { type: "shutdown" },
        { type: "shutdown", reason: "shutdown request" },
      );
    default:
      return reply(state, { type: "error", error: { type: "unsupported", request: request.type } });
  }
}
