/**
 * The daemon's side of bundle writing: fixes what is the same for every container (run and
 * data directories, skiff-init, host facts) and turns a start request's overrides into the
 * OCI spec's (Northstar's rules: `<INIT>` in an init override stands for the manifest's init;
 * arguments given, or any init override, replace the manifest's arguments; an environment given
 * replaces the manifest's).
 */
import type { CleanupLog } from "../errors.js";
import type { Manifest } from "../../npk/manifest/index.js";
import type { ContainerId } from "../../protocol/container.js";
import { nativeBinary } from "../monitor/client.js";
import { removeBundle, writeBundle, type BundleLayout } from "../oci/bundle.js";
import type { HostFacts } from "../oci/host.js";
import type { OciSpecInput } from "../oci/spec.js";
import type { CriContainerPart, StartOverrides } from "../events/data.js";

export interface WrittenBundle {
  bundleDir: string;
  /** MonitorOptions.extraFds and .wrapper (skiff-mksock for datagram and seq_packet sockets). */
  socketFds: (number | "ignore")[];
  monitorWrapper: string[];
  warnings: string[];
  /** Closes the daemon's copies of the socket fds once the monitor holds them. */
  closeFds(): void;
}

function ociOverrides(manifest: Manifest, o: StartOverrides): OciSpecInput["overrides"] {
  const out: NonNullable<OciSpecInput["overrides"]> = {};
  if (o.init !== null)
    out.init = manifest.init === undefined ? o.init : o.init.replaceAll("<INIT>", manifest.init);
  if (o.init !== null || o.arguments.length > 0) out.args = o.arguments;
  if (Object.keys(o.environment).length > 0) out.env = o.environment;
  return out;
}

export class BundleWriter {
  private readonly layout: BundleLayout;

  constructor(
    private readonly o: {
      log: CleanupLog;
      runDir: string;
      dataDir: string;
      host: HostFacts;
      socketDir?: string;
    },
  ) {
    this.layout = { runDir: o.runDir, socketDir: o.socketDir };
  }

  async write(input: {
    container: ContainerId;
    manifest: Manifest;
    rootfsPath: string;
    resourceRoots: Record<string, string>;
    cgroupsPath: string;
    consoleSocketHostPath?: string;
    overrides: StartOverrides;
    cri?: CriContainerPart;
  }): Promise<WrittenBundle> {
    const bundle = await writeBundle({
      log: this.o.log,
      layout: this.layout,
      manifest: input.manifest,
      containerId: input.container,
      rootfsPath: input.rootfsPath,
      resourceRoots: input.resourceRoots,
      dataDir: this.o.dataDir,
      cgroupsPath: input.cgroupsPath,
      initHostPath: nativeBinary("skiff-init"),
      mksockHostPath: nativeBinary("skiff-mksock"),
      consoleSocketHostPath: input.consoleSocketHostPath,
      overrides: ociOverrides(input.manifest, input.overrides),
      host: this.o.host,
      ...(input.cri ? { cri: input.cri, extraEnv: input.cri.env } : {}),
    });
    return {
      bundleDir: bundle.bundleDir,
      socketFds: bundle.socketFds,
      monitorWrapper: bundle.monitorWrapper,
      warnings: bundle.warnings,
      closeFds: () => void bundle.releaseSocketFds(),
    };
  }

  remove(container: ContainerId): Promise<void> {
    return removeBundle(this.layout, container);
  }
}
