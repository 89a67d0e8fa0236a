/**
 * crun beside runc under Skiff's own monitor and init (docs/runtime.md): the same container
 * started by two daemons, one per runtime, alternating runs. Figures:
 * - start: `start` request -> its answer (the monitor's START: create done, exec fifo, READY);
 * - start -> exit of `/bin/true`: the whole cycle, cleanup included (the next start waits for it).
 * The baseline is runc; the ratio is crun / runc (p50). crun refuses hybrid cgroup hosts, so the
 * suite runs where the host is pure cgroup v2 (the VM lane: `scripts/vm/run npm run bench -- runtimes`).
 */
import { detectLayout } from "../src/daemon/cgroups/layout.js";
import { ContainerHarness } from "../test/helpers/containers.js";
import { ms, percentile, versus } from "./stats.js";

const RUNS = 20;

const p50p99 = (samples: number[]): string =>
  `p50 ${ms(percentile(samples, 50))} p99 ${ms(percentile(samples, 99))}`;

interface Side {
  h: ContainerHarness;
  sleeper: string;
  truth: string;
  start: number[];
  cycle: number[];
}

async function side(kind: "runc" | "crun"): Promise<Side> {
  const h = await ContainerHarness.create();
  const sleeper = await h.add(h.name("sleeper"), "/bin/sleep", ["1000"]);
  const truth = await h.add(h.name("true"), "/bin/true", []);
  // Its own [runtime] table: SKIFF_TEST_RUNTIME does not apply. Under TCG crun's --version is slow.
  await h.startDaemon(`[runtime]\nkind = "${kind}"\nprobe_timeout = "5s"\n`);
  return { h, sleeper, truth, start: [], cycle: [] };
}

async function once(s: Side): Promise<void> {
  let from = s.h.notifications.length;
  let t0 = performance.now();
  await s.h.client.start(s.sleeper);
  s.start.push(performance.now() - t0);
  await s.h.client.kill(s.sleeper, 9);
  await s.h.waitForExit(s.sleeper, from);

  from = s.h.notifications.length;
  t0 = performance.now();
  await s.h.client.start(s.truth);
  await s.h.waitForExit(s.truth, from);
  s.cycle.push(performance.now() - t0);
}

export async function benchRuntimes(): Promise<string[]> {
  const layout = await detectLayout();
  if (layout.kind === "hybrid")
    return [
      "skipped: crun refuses hybrid cgroup hosts (run it in the VM lane: scripts/vm/run npm run bench -- runtimes)",
    ];
  const runc = await side("runc");
  const crun = await side("crun").catch(async (e: unknown) => {
    await runc.h.close();
    throw e;
  });
  try {
    // One warm-up each (page cache, first cgroup), then alternating runs so load hits both alike.
    await once(runc);
    await once(crun);
    for (const s of [runc, crun]) {
      s.start.length = 0;
      s.cycle.length = 0;
    }
    for (let i = 0; i < RUNS; i++) {
      await once(runc);
      await once(crun);
    }
    const ratio = (a: number[], b: number[]): number => percentile(a, 50) / percentile(b, 50);
    return [
      versus(
        `crun start -> started (${RUNS} runs)`,
        p50p99(crun.start),
        `runc ${p50p99(runc.start)}`,
        ratio(crun.start, runc.start),
      ),
      versus(
        `crun start -> exit of /bin/true (${RUNS} runs)`,
        p50p99(crun.cycle),
        `runc ${p50p99(runc.cycle)}`,
        ratio(crun.cycle, runc.cycle),
      ),
    ];
  } finally {
    await runc.h.close();
    await crun.h.close();
  }
}
