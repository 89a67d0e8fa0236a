/**
 * The pod sandbox methods of the CRI RuntimeService: requests read (spec.ts, filter.ts), the pod
 * store asked, its records written back as CRI messages. Registered by server.ts.
 */
import type { CgroupStats } from "../../daemon/cgroups/cgroup-stats.js";
import { invalid, notFound } from "./errors.js";
import type { PodInterfaceCounters } from "./network.js";
import { readFilter } from "./filter.js";
import { podResources, readPodSpec } from "./spec.js";
import type { PodRecord, PodStore } from "./store.js";

type Message = Record<string, unknown>;
type PodHandler = (call: { request: Message }) => Promise<unknown>;

function podId(request: Message): string {
  const id = request.pod_sandbox_id;
  if (typeof id !== "string" || id === "" || id.length > 64) {
    throw invalid("pod_sandbox_id: expected a pod sandbox id");
  }
  return id;
}

const STATE = { ready: "SANDBOX_READY", notready: "SANDBOX_NOTREADY" } as const;

function metadataOf(record: PodRecord): Message {
  return { ...record.metadata };
}

function sandboxMessage(record: PodRecord): Message {
  return {
    id: record.id,
    metadata: metadataOf(record),
    state: STATE[record.state],
    created_at: record.createdAt,
    labels: record.labels,
    annotations: record.annotations,
    runtime_handler: record.runtimeHandler,
  };
}

function statusMessage(record: PodRecord): Message {
  return {
    ...sandboxMessage(record),
    network: { ip: record.ip ?? "", additional_ips: [] },
    linux: {
      namespaces: {
        options: { network: record.modes.network, pid: record.modes.pid, ipc: record.modes.ipc },
      },
    },
  };
}

const now = (): string => String(BigInt(Date.now()) * 1_000_000n);
const u64 = (value: number | undefined): Message | null =>
  value === undefined ? null : { value: String(Math.max(0, Math.round(value))) };

function statsMessage(
  record: PodRecord,
  stats: CgroupStats | undefined,
  eth0: PodInterfaceCounters | undefined,
): Message {
  const timestamp = now();
  const memory = stats?.memory;
  // The kubelet's working set: usage less the inactive page cache (cAdvisor's rule).
  const inactive = memory?.stat.total_inactive_file ?? memory?.stat.inactive_file ?? 0;
  return {
    attributes: {
      id: record.id,
      metadata: metadataOf(record),
      labels: record.labels,
      annotations: record.annotations,
    },
    linux: {
      cpu: stats?.cpu ? { timestamp, usage_core_nano_seconds: u64(stats.cpu.usageNs) } : null,
      memory: memory
        ? {
            timestamp,
            working_set_bytes: u64(Math.max(0, memory.usage - inactive)),
            usage_bytes: u64(memory.usage),
            rss_bytes: u64(memory.anon),
            page_faults: u64(memory.pgfault),
            major_page_faults: u64(memory.pgmajfault),
            ...(memory.limit === null
              ? {}
              : { available_bytes: u64(Math.max(0, memory.limit - memory.usage)) }),
          }
        : null,
      process: stats?.pids ? { timestamp, process_count: u64(stats.pids.current) } : null,
      network: eth0
        ? {
            timestamp,
            default_interface: {
              name: "eth0",
              rx_bytes: u64(eth0.rxBytes),
              rx_errors: u64(eth0.rxErrors),
              tx_bytes: u64(eth0.txBytes),
              tx_errors: u64(eth0.txErrors),
            },
            interfaces: [],
          }
        : null,
      containers: [],
    },
  };
}

/**
 * The runtime handler a new pod runs under: `requested` if it is alive, "" spread across the
 * live handlers by how many ready pods each runs (handlers.ts `pick`); throws when refused.
 */
export type PickHandler = (requested: string, load: (handler: string) => number) => Promise<string>;

/** The implemented pod methods, by `Service/Method`. */
export function podHandlers(pods: PodStore, pickHandler: PickHandler): Record<string, PodHandler> {
  const found = (request: Message): PodRecord => {
    const record = pods.find(podId(request));
    if (record === undefined) throw notFound(`pod sandbox ${podId(request)} not found`);
    return record;
  };
  const podStats = async (record: PodRecord): Promise<Message> =>
    statsMessage(record, pods.stats(record.id), await pods.interfaceCounters(record.id));
  return {
    "RuntimeService/RunPodSandbox": async ({ request }) => {
      const spec = readPodSpec(request);
      // The record keeps the handler chosen, never "": the pod's containers and a restarted
      // daemon run it under the same runtime.
      spec.runtimeHandler = await pickHandler(spec.runtimeHandler, (handler) => pods.readyPodsOf(handler));
      const record = await pods.run(spec);
      return { pod_sandbox_id: record.id };
    },
    "RuntimeService/StopPodSandbox": async ({ request }) => {
      await pods.stop(podId(request));
      return {};
    },
    "RuntimeService/RemovePodSandbox": async ({ request }) => {
      await pods.remove(podId(request));
      return {};
    },
    "RuntimeService/PodSandboxStatus": ({ request }) => {
      const record = found(request);
      const verbose = request.verbose === true;
      return Promise.resolve({
        status: statusMessage(record),
        info: verbose ? { info: JSON.stringify(pods.sandbox(record.id)) } : {},
        containers_statuses: [],
        timestamp: now(),
      });
    },
    "RuntimeService/ListPodSandbox": ({ request }) =>
      Promise.resolve({
        items: pods.list(readFilter(request.filter as Message | null)).map(sandboxMessage),
      }),
    "RuntimeService/UpdatePodSandboxResources": async ({ request }) => {
      await pods.update(found(request).id, podResources(request));
      return {};
    },
    "RuntimeService/PodSandboxStats": async ({ request }) => {
      const record = found(request);
      return { stats: await podStats(record) };
    },
    "RuntimeService/UpdateRuntimeConfig": ({ request }) => {
      // The kubelet tells the runtime the node's pod CIDR and retries (and logs) on every node
      // sync while a runtime refuses. Skiff's pod network is its own `[cri] pod_cidr`: the
      // kubelet's is accepted and noted, not applied.
      const network = (request.runtime_config as Message | null)?.network_config as Message | null;
      const cidr = network?.pod_cidr;
      if (cidr !== undefined && cidr !== null && (typeof cidr !== "string" || cidr.length > 256)) {
        throw invalid("runtime_config.network_config.pod_cidr: not a CIDR");
      }
      pods.noteKubeletCidr(typeof cidr === "string" ? cidr : "");
      return Promise.resolve({});
    },
    "RuntimeService/ListPodSandboxStats": async ({ request }) => {
      const filter = readFilter(request.filter as Message | null);
      const stats: Message[] = [];
      for (const record of pods.list(filter)) {
        // One pod's synchronous cgroup reads (about 0.15 ms) per turn of the event loop, so a
        // node full of pods does not hold it for the whole list.
        await new Promise((resolve) => setImmediate(resolve));
        stats.push(await podStats(record));
      }
      return { stats };
    },
  };
}
