/**
 * `npm run bench -- cri`: RunPodSandbox over the real CRI socket of an in-process skiffd, from the
 * pool of prepared sandboxes (`[cri] sandbox_pool`) vs cold (pool 0: namespaces, loopback, veth
 * and address made on the request path), and as the baseline measured in the same run a bare
 * `unshare --net=F --ipc=F --uts=F ip link set lo up` of the same namespaces (what a cold pod
 * costs at the very least), and a `Version` call on the same socket (the gRPC round trip alone).
 * Each pod is removed after its timed run, untimed; before each pooled run the pool is refilled,
 * so every pooled run takes a prepared sandbox.
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { credentials, type Client, type ServiceError } from "@grpc/grpc-js";
import type { CriEndpoint } from "../src/cri/index.js";
import { loadCriServices } from "../src/cri/proto.js";
import { startInProcessDaemon } from "../test/helpers/daemon.js";
import { testPodNetwork } from "../test/integration/cri/pods-network.js";
import { ms, percentile, timed, versus } from "./stats.js";

const run = promisify(execFile);
const ROUNDS = 15;

type Message = Record<string, unknown>;

function call(client: Client, name: string, request: Message): Promise<Message> {
  const fn = (client as unknown as Record<string, (...args: unknown[]) => void>)[name]!;
  return new Promise((resolve, reject) =>
    fn.call(client, request, { deadline: Date.now() + 60_000 }, (e: ServiceError | null, r: Message) =>
      e ? reject(e) : resolve(r),
    ),
  );
}

const podConfig = (i: number): Message => ({
  metadata: { name: `bench-${i}`, namespace: "bench", uid: `uid-${i}`, attempt: 0 },
  hostname: `bench-${i}`,
  dns_config: { servers: ["10.96.0.10"], searches: ["bench.svc.cluster.local"], options: ["ndots:5"] },
  linux: { resources: { memory_limit_in_bytes: String(64 * 1024 * 1024) } },
});

/**
 * RunPodSandbox times (ms) against a daemon with `pool` prepared sandboxes, and the times of as
 * many `Version` calls (the gRPC round trip alone) on the same socket.
 */
async function runPods(pool: number): Promise<{ runs: number[]; version: number[] }> {
  const network = testPodNetwork();
  const daemon = await startInProcessDaemon(
    (dir) => `[cri]\nsocket = "${dir}/cri.sock"\n${network.toml(pool)}`,
  );
  const client = new (loadCriServices().RuntimeService)(
    `unix:${daemon.dir}/cri.sock`,
    credentials.createInsecure(),
  );
  const pods = (daemon.runtime as unknown as { cri: CriEndpoint }).cri.pods;
  const samples: number[] = [];
  const version: number[] = [];
  try {
    for (let i = 0; i < ROUNDS; i++) {
      version.push(await timed(() => call(client, "Version", { version: "0.1.0" })));
      await pods.poolFilled();
      let id = "";
      samples.push(
        await timed(async () => {
          id = (await call(client, "RunPodSandbox", { config: podConfig(i) })).pod_sandbox_id as string;
        }),
      );
      const expected = pool > 0 ? "pool" : "cold";
      if (pods.lastSource !== expected)
        throw new Error(`pod ${i} came from ${pods.lastSource}, not ${expected}`);
      await call(client, "RemovePodSandbox", { pod_sandbox_id: id });
    }
  } finally {
    client.close();
    await daemon.stop();
    await network.remove();
  }
  return { runs: samples, version };
}

/** The same namespaces made persistent by unshare alone, loopback up, then released (untimed). */
async function unshareBaseline(): Promise<number[]> {
  const dir = await mkdtemp(join(tmpdir(), "skiff-bench-ns-"));
  const samples: number[] = [];
  try {
    await run("mount", ["--bind", dir, dir]);
    await run("mount", ["--make-private", dir]);
    const files = ["net", "ipc", "uts"].map((kind) => join(dir, kind));
    for (let i = 0; i < ROUNDS; i++) {
      await Promise.all(files.map((f) => writeFile(f, "")));
      samples.push(
        await timed(() =>
          run("unshare", [
            `--net=${files[0]}`,
            `--ipc=${files[1]}`,
            `--uts=${files[2]}`,
            "--",
            "ip",
            "link",
            "set",
            "lo",
            "up",
          ]),
        ),
      );
      for (const f of files) await run("umount", [f]);
    }
  } finally {
    await run("umount", [dir]).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
  return samples;
}

export async function benchCri(): Promise<string[]> {
  const baseline = await unshareBaseline();
  const { runs: pooled, version } = await runPods(2);
  const { runs: cold } = await runPods(0);
  const p50 = (s: number[]): number => percentile(s, 50);
  return [
    versus(
      `RunPodSandbox from the pool, p50 of ${ROUNDS}`,
      ms(p50(pooled)),
      `cold ${ms(p50(cold))}`,
      p50(pooled) / p50(cold),
    ),
    versus(
      "RunPodSandbox cold (namespaces, loopback, veth, address, hostname, files, cgroup), p50",
      ms(p50(cold)),
      `bare unshare of the same namespaces ${ms(p50(baseline))}`,
      p50(cold) / p50(baseline),
    ),
    versus(
      "RunPodSandbox from the pool, p50",
      ms(p50(pooled)),
      `bare unshare ${ms(p50(baseline))}`,
      p50(pooled) / p50(baseline),
    ),
    versus(
      "RunPodSandbox from the pool, p50",
      ms(p50(pooled)),
      `a Version call on the same socket ${ms(p50(version))}`,
      p50(pooled) / p50(version),
    ),
  ];
}
