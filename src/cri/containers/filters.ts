/**
 * ListContainers' and ListContainerStats' filters (pure): by id (the full id or a prefix of it,
 * as crictl passes), by state, by pod sandbox id (full or prefix) and by labels (every selector
 * pair must match).
 */

export type CriContainerState =
  | "CONTAINER_CREATED"
  | "CONTAINER_RUNNING"
  | "CONTAINER_EXITED"
  | "CONTAINER_UNKNOWN";

export interface ContainerFilter {
  id: string;
  /** Absent: any state. */
  state?: CriContainerState;
  podSandboxId: string;
  labelSelector: Record<string, string>;
}

export interface Filterable {
  id: string;
  podSandboxId: string;
  state: CriContainerState;
  labels: Readonly<Record<string, string>>;
}

/** The filter of a request (`ContainerFilter` or `ContainerStatsFilter`; absent: everything). */
export function filterOf(message: Record<string, unknown> | null | undefined): ContainerFilter {
  const text = (name: string): string => {
    const v = message?.[name];
    return typeof v === "string" ? v : "";
  };
  const state = (message?.state as { state?: unknown } | null | undefined)?.state;
  const selector = message?.label_selector;
  const labelSelector: Record<string, string> = {};
  if (selector !== null && typeof selector === "object")
    for (const [k, v] of Object.entries(selector as Record<string, unknown>))
      if (typeof v === "string") labelSelector[k] = v;
  return {
    id: text("id"),
    podSandboxId: text("pod_sandbox_id"),
    labelSelector,
    ...(typeof state === "string" ? { state: state as CriContainerState } : {}),
  };
}

export function matches(filter: ContainerFilter, c: Filterable): boolean {
  if (filter.id !== "" && !c.id.startsWith(filter.id)) return false;
  if (filter.podSandboxId !== "" && !c.podSandboxId.startsWith(filter.podSandboxId)) return false;
  if (filter.state !== undefined && filter.state !== c.state) return false;
  return Object.entries(filter.labelSelector).every(([k, v]) => c.labels[k] === v);
}
