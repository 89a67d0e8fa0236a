// Pod sandboxes (docs/cri.md, "Pod sandboxes"): what the rest of Skiff uses. The containers side
// (src/cri/containers/) looks pods up through `PodSandboxLookup` (src/cri/sandbox.ts) and fills
// the stop/remove hooks: `pods.onStop(id => stop the pod's containers)`,
// `pods.onRemove(id => remove the pod's containers)`, both awaited before the pod's network,
// cgroup and namespaces go. Hooks must be idempotent: CRI repeats stops, and a removal runs the
// stop hooks again first. A hook that throws fails the CRI call (the kubelet retries it).
export type { PodSandboxLookup, PodSandboxRef, PodSandboxMetadata } from "../sandbox.js";
export {
  PodStore,
  type PodHook,
  type PodRecord,
  type PodStoreOptions,
  type NetworkCondition,
} from "./store.js";
export { podHandlers } from "./handlers.js";
export { PodError } from "./errors.js";
export { parseCidr, type Ipv4Cidr } from "./cidr.js";
