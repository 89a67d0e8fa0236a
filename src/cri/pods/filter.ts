/** `ListPodSandbox` and `ListPodSandboxStats` filters. Pure. */

export type PodState = "ready" | "notready";

export interface PodFilter {
  /** A full id or a prefix of one (as crictl passes truncated ids); "" = any. */
  id: string;
  /** undefined = any. */
  state: PodState | undefined;
  /** Every pair must be among the pod's labels; {} = any. */
  labelSelector: Record<string, string>;
}

export interface Filterable {
  id: string;
  state: PodState;
  labels: Record<string, string>;
}

export function matchesFilter(pod: Filterable, filter: PodFilter): boolean {
  if (filter.id !== "" && !pod.id.startsWith(filter.id)) return false;
  if (filter.state !== undefined && pod.state !== filter.state) return false;
  return Object.entries(filter.labelSelector).every(
    ([key, value]) => Object.hasOwn(pod.labels, key) && pod.labels[key] === value,
  );
}

type Message = Record<string, unknown> | null | undefined;

/** The filter of a request (`PodSandboxFilter` or `PodSandboxStatsFilter`; absent: match all). */
export function readFilter(message: Message): PodFilter {
  const id = message?.id;
  const state = (message?.state as Message)?.state;
  const selector = message?.label_selector;
  const labelSelector: Record<string, string> = {};
  if (typeof selector === "object" && selector !== null) {
    for (const [key, value] of Object.entries(selector)) {
      if (typeof value === "string") {
        Object.defineProperty(labelSelector, key, { value, enumerable: true });
      }
    }
  }
  return {
    id: typeof id === "string" ? id : "",
    state: state === "SANDBOX_READY" ? "ready" : state === "SANDBOX_NOTREADY" ? "notready" : undefined,
    labelSelector,
  };
}
