/**
 * What a Kubernetes CRI container's OCI spec gets beyond its manifest's (docs/cri.md,
 * "Containers"). Pure: `applyCri` reshapes the spec `buildOciSpec` made from the synthetic
 * manifest, with `CriContainerPart` (already validated by the CRI side, src/cri/containers/).
 *
 * - Namespaces: a PID and a mount namespace of its own; the pod's network, IPC and UTS namespace
 *   files joined by path, or the host's when the pod has none (CRI `NamespaceMode.NODE`). The
 *   hostname is the pod's (its UTS namespace), so the spec sets none.
 * - Root: the overlay of the image's unpacked root and the container's writable layer, made
 *   read-only only when `readonly_rootfs` asks.
 * - Mounts: /sys read-only, the pod's /etc/hosts, /etc/resolv.conf and /etc/hostname read-only,
 *   then CRI's host path binds (private propagation: no propagation is offered).
 * - Process: the working directory, uid/gid and supplementary gids CRI gives, its OOM score.
 * - Resources: CRI's CPU and memory limits in `linux.resources`.
 */
import type { CriContainerPart, CriResources } from "../events/data.js";
import type { OciMount, OciResources, OciSpec } from "./types.js";

/** Applies a CRI container's part to the spec built from its manifest. */
export function applyCri(spec: OciSpec, cri: CriContainerPart): void {
  spec.root.readonly = cri.readonlyRootfs;
  spec.linux.namespaces = [
    { type: "pid" },
    { type: "mount" },
    ...(["network", "ipc", "uts"] as const).flatMap((type) => {
      const path = cri.namespaces[type];
      return path === undefined ? [] : [{ type, path }];
    }),
  ];
  delete spec.hostname;
  spec.process.cwd = cri.workingDir ?? "/";
  spec.process.user = {
    uid: cri.uid,
    gid: cri.gid,
    ...(cri.additionalGids.length > 0 ? { additionalGids: [...cri.additionalGids] } : {}),
  };
  if (cri.oomScoreAdj !== undefined) spec.process.oomScoreAdj = cri.oomScoreAdj;
  const mounts: OciMount[] = [
    { destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"] },
  ];
  if (cri.etcFiles) {
    const etc: [string, string][] = [
      ["/etc/hosts", cri.etcFiles.hosts],
      ["/etc/resolv.conf", cri.etcFiles.resolvConf],
      ["/etc/hostname", cri.etcFiles.hostname],
    ];
    for (const [destination, source] of etc)
      mounts.push({ destination, type: "bind", source, options: ["bind", "ro", "nosuid", "nodev"] });
  }
  for (const m of cri.mounts) {
    mounts.push({
      destination: m.containerPath,
      type: "bind",
      source: m.hostPath,
      options: ["rbind", "rprivate", m.readonly ? "ro" : "rw"],
    });
  }
  const taken = new Set(mounts.map((m) => m.destination));
  // A CRI mount at a destination Skiff mounts (e.g. /dev/shm) replaces Skiff's.
  spec.mounts = [...spec.mounts.filter((m) => !taken.has(m.destination)), ...mounts].sort(
    (a, b) => depth(a.destination) - depth(b.destination),
  );
  spec.linux.resources = withCriResources(spec.linux.resources, cri.resources);
}

/** The spec's resources with CRI's CPU and memory limits in place of the manifest's. */
export function withCriResources(base: OciResources, r: CriResources): OciResources {
  const cpu: NonNullable<OciResources["cpu"]> = {};
  if (r.cpuShares !== undefined) cpu.shares = r.cpuShares;
  if (r.cpuQuota !== undefined) cpu.quota = r.cpuQuota;
  if (r.cpuPeriod !== undefined) cpu.period = r.cpuPeriod;
  if (r.cpusetCpus !== undefined) cpu.cpus = r.cpusetCpus;
  if (r.cpusetMems !== undefined) cpu.mems = r.cpusetMems;
  const out: OciResources = { ...base };
  if (Object.keys(cpu).length > 0) out.cpu = cpu;
  else delete out.cpu;
  if (r.memoryLimitBytes !== undefined) out.memory = { limit: r.memoryLimitBytes };
  else delete out.memory;
  return out;
}

function depth(destination: string): number {
  return destination.split("/").filter((c) => c !== "").length;
}
