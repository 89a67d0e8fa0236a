/**
 * Console requests as pure transitions: (state, peer, request) -> (state, steps). Requests
 * whose feature this daemon does not serve yet answer the documented `unsupported` error.
 * `install` never reaches here: its payload is received by a job first (see upload.ts), and
 * the verified upload arrives as a `job` event.
 */
import { criRefusal } from "./cri.js";
import type { Request, Response } from "../../protocol/messages.js";
import type { Peer, Reply } from "../events/types.js";
import { initialPower, visibleContainers, type ContainerRecord, type RuntimeState } from "./model.js";
import { killRequest, prepareContainer, startRequest, stopRequest } from "./containers.js";
import { checkpointRequest, restoreRequest } from "./checkpoint.js";
import { pauseRequest, powerInfo, resumeRequest, suspendRequest } from "./power.js";
import { lockAcquire, lockRelease, proxyHandled, sourceAdd, sourceRemove } from "./wake.js";
import { mountRequest, uninstallRequest, visible } from "./packages.js";
import type { Step, Transition } from "../events/steps.js";
import { createToken, tokenIdentity, verifyToken, type TokenKey } from "../tokens.js";
import {
  containerError,
  inspectResponse,
  powerResponse,
  requestError,
  type InspectView,
  containerResponse,
} from "../responses.js";

/** What token requests need besides the state: the daemon's key and `token_validity`. */
export interface TokenContext {
  key: TokenKey;
  validityMs: number;
}

/** Northstar answers `ident` from a host client with this id. */
export const EXTERN_IDENT = "extern:0.0.0";

const reply = (state: RuntimeState, response: Response, ...more: Step[]): Transition<RuntimeState> => ({
  state,
  steps: [{ type: "reply", response }, ...more],
});

function processView(record: ContainerRecord, now: number): InspectView["process"] {
  const p = record.process;
  if (p?.pid === undefined || p.startedAt === undefined) return null;
  return { pid: p.pid, uptime: Math.max(0, now - p.startedAt) * 1_000_000, started_by: p.startedBy };
}

/** Who holds a wake lock taken by `peer`: its console session for containers, else the host. */
function holderOf(peer: Peer): string {
  return peer.kind === "container" && peer.session !== undefined ? `session:${peer.session}` : "host";
}

/**
 * `now` (epoch ms) is passed in so the transition stays pure. Without `tokens` (unit tests of
 * other requests) token requests answer `unsupported`.
 */
export function handleRequest(
  state: RuntimeState,
  peer: Peer,
  request: Request,
  answer: Reply,
  now: number,
  tokens?: TokenContext,
): Transition<RuntimeState> {
  switch (request.type) {
    case "ident":
      return reply(state, {
        type: "ident",
        container: peer.kind === "container" ? peer.container : EXTERN_IDENT,
      });
    case "list":
      return reply(state, {
        type: "list",
        containers: visibleContainers(state)
          .map((c) => c.id)
          .sort(),
      });
    case "repositories":
      return reply(state, { type: "repositories", repositories: [...state.repositories.keys()] });
    case "inspect": {
      const record = state.containers.get(request.container);
      if (!record || record.busy === "install") {
        const error = { type: "invalid_container" as const, container: request.container };
        return reply(state, containerError("inspect", request.container, error));
      }
      const view: InspectView = {
        container: record.id,
        data: {
          manifest: record.pkg.npk.manifest as unknown as Record<string, unknown>,
          repository: record.pkg.repository,
          mounted: record.mount !== undefined,
          state: record.process?.phase ?? (record.mount ? "mounted" : "installed"),
          ...(record.process ? { power: powerInfo(record.process.power) } : {}),
          ...(record.mount ? { verity: record.mount.verity ?? "none" } : {}),
        },
        process: processView(record, now),
      };
      // A running container's statistics are read from its cgroup by the executor.
      if (view.process)
        return { state, steps: [{ type: "reply_inspect", container: record.id, view, reply: answer }] };
      return reply(state, inspectResponse(view));
    }
    case "mount":
      return mountRequest(state, "mount", request.containers, answer);
    case "umount":
      return mountRequest(state, "umount", request.containers, answer);
    case "uninstall":
      return uninstallRequest(state, request, answer);
    case "start":
    case "prepare":
    case "checkpoint":
    case "restore": {
      // A CRI container starts once, by the kubelet (state/cri.ts); no console start, no image.
      const refused = criRefusal(state.containers.get(request.container), request.type);
      if (refused) return reply(state, containerResponse(request.type, request.container, refused));
      if (request.type === "start") return startRequest(state, request, answer, now);
      if (request.type === "prepare") return prepareContainer(state, request.container, answer, now);
      if (request.type === "checkpoint") return checkpointRequest(state, request.container, answer);
      return restoreRequest(state, request.container, answer, now);
    }
    case "kill":
      return killRequest(state, request, answer);
    case "stop":
      return stopRequest(state, request, answer);
    case "logs": {
      if (!visible(state, request.container)) {
        const error = { type: "invalid_container" as const, container: request.container };
        return reply(state, containerError("logs", request.container, error));
      }
      const { container, lines, offset } = request;
      return { state, steps: [{ type: "read_logs", container, lines, offset, reply: answer }] };
    }
    case "pause":
      return pauseRequest(state, request.container, answer);
    case "resume":
      return resumeRequest(state, request.container, answer);
    case "suspend":
      return suspendRequest(state, request.container, request.max_sleep_ms, answer, now);
    case "wake_lock_acquire":
      return lockAcquire(state, request, holderOf(peer), answer, now);
    case "wake_lock_release":
      return lockRelease(state, request.container, request.name, answer, now);
    case "add_wake_source":
      return sourceAdd(state, request.container, request.name, request.source, answer);
    case "remove_wake_source":
      return sourceRemove(state, request.container, request.name, answer);
    case "proxy_handled":
      return proxyHandled(state, request.container, request.name, request.count ?? 1, answer);
    case "proxy_wake_channel": {
      if (!state.containers.get(request.container)?.process) {
        const error = { type: "stop_container_not_started" as const, container: request.container };
        return reply(state, containerError("proxy", request.container, error));
      }
      const { container, name, listen, target } = request;
      return {
        state,
        steps: [
          {
            type: "open_proxy",
            container,
            name,
            listen,
            target,
            framing: request.framing ?? "newline",
            reply: answer,
          },
        ],
      };
    }
    case "power": {
      const record = visible(state, request.container);
      if (!record) {
        const error = { type: "invalid_container" as const, container: request.container };
        return reply(state, containerError("power", request.container, error));
      }
      const info = record.process
        ? powerInfo(record.process.power)
        : { ...powerInfo(initialPower(now)), state: "awake" as const };
      return reply(state, powerResponse(record.id, info));
    }
    case "token_create":
      if (!tokens) break;
      // The creator is the connection, never a name from the request (ESR-01-012).
      return reply(state, {
        type: "token",
        token: createToken(
          tokens.key,
          now,
          tokenIdentity(peer),
          request.target,
          Buffer.from(request.shared, "base64"),
        ).toString("base64"),
      });
    case "token_verify":
      if (!tokens) break;
      // The target is the verifying connection: a token made for B verifies only on B's connections.
      return reply(state, {
        type: "token_verification",
        result: verifyToken(
          tokens.key,
          now,
          tokens.validityMs,
          Buffer.from(request.token, "base64"),
          request.user,
          tokenIdentity(peer),
          Buffer.from(request.shared, "base64"),
        ),
      });
    case "shutdown":
      if (state.shuttingDown) return reply(state, { type: "shutdown" });
      return reply(
        { ...state, shuttingDown: true },
        { type: "shutdown" },
        { type: "shutdown", reason: { kind: "request" } },
      );
    // Answered before the loop (runtime.ts): `install` streams its payload in a job first,
    // `health` is the toolchain's, not the state's, `exec` streams on its connection
    // (exec/executor.ts) and `statistics` reads cgroups in slices between loop turns.
    // Should one reach here, it is unsupported.
    case "install":
    case "health":
    case "exec":
    case "statistics":
      break;
    default: {
      const unrouted: never = request;
      throw new Error(`unrouted request ${JSON.stringify(unrouted)}`);
    }
  }
  return reply(state, requestError({ type: "unsupported", request: request.type }));
}
