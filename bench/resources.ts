/**
 * Resource benchmarks against a real `skiffd` (test/helpers/containers.ts), each beside a baseline
 * measured in the same run:
 * - OOM kill -> `c_group` notification (the one that counts the kill) at a client, vs the `exit`
 *   notification of the same container, both timed from the kernel's OOM kill. The kill time is the
 *   kernel log's timestamp of "Killed process <pid>" (printed by the OOM killer right after it sent
 *   SIGKILL; /dev/kmsg, microseconds of the kernel's local clock). The kernel clock is related to
 *   performance.now() by marks this process writes to /dev/kmsg, each bracketed by two performance.now()
 *   reads (the uncertainty is half the bracket, printed; the drift between the first and the last mark
 *   is printed too).
 * - statistics of 100 running containers through `inspect` (one client, sequential requests), vs
 *   reading the same cgroup files directly (readFileSync, as the daemon does).
 * - a `skiff stats` refresh of the 100: what the command does each time (one `statistics` request
 *   for all of them), ms per refresh, vs the same direct reads (target <= 1.5x, docs/footprint.md);
 *   and `skiff stats` as a command, vs `node -e 0` plus the same direct reads.
 */
import { execFile } from "node:child_process";
import { closeSync, constants, openSync, readFileSync, readSync, writeSync } from "node:fs";
import { promisify } from "node:util";
import { connect, type Client } from "../src/client/index.js";
import { ContainerHarness } from "../test/helpers/containers.js";
import { NotificationClock, p50p99, ratio50, timed } from "./power.js";
import { ms, percentile, versus, versusTarget } from "./stats.js";
import { STATS_FILES as CGROUP_STATS_FILES } from "./cgroups.js";

const OOM_ROUNDS = 15;
const FLEET = 100;
const CLIENTS = 10;
const STATS_ROUNDS = 20;
const MiB = 1024 * 1024;
/** `skiff stats` as a command: a process each time, beside `node -e 0` + the direct reads. */
const CLI_ROUNDS = 7;
const CLI = new URL("../cli/skiff.js", import.meta.url).pathname; // the installed `skiff` (bundled)
const run = promisify(execFile);

/** What `inspect` reads per running container on this hybrid (v1 controllers) host. */
const STATS_FILES = CGROUP_STATS_FILES[1];

interface KernelRecord {
  /** The kernel's timestamp, ms. */
  at: number;
  text: string;
}

/**
 * The kernel log, read from where it was when opened. /dev/kmsg returns one record per read;
 * writes to it are rate limited (10 per 5 s by default), so `mark` is used sparingly.
 */
class KernelLog {
  private readonly fd = openSync("/dev/kmsg", constants.O_RDWR | constants.O_NONBLOCK);
  private readonly buffer = Buffer.alloc(16 * 1024);

  constructor() {
    this.drain();
  }

  /** Records written since the last call. */
  drain(): KernelRecord[] {
    const records: KernelRecord[] = [];
    for (;;) {
      let n: number;
      try {
        n = readSync(this.fd, this.buffer);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === "EPIPE") continue; // records were overwritten before we read them
        if (code === "EAGAIN") return records;
        throw e;
      }
      const line = this.buffer.toString("utf8", 0, n);
      const header = line.slice(0, line.indexOf(";")).split(",");
      records.push({ at: Number(header[2]) / 1000, text: line.slice(line.indexOf(";") + 1).split("\n")[0]! });
    }
  }

  /**
   * Writes a mark and finds its kernel timestamp: returns kernel time - performance.now() (ms) and
   * the uncertainty (half the time the write took).
   */
  mark(tag: string): { offset: number; uncertainty: number } {
    const text = `skiff-bench: clock mark ${tag} ${process.pid}`;
    const before = performance.now();
    writeSync(this.fd, `${text}\n`);
    const after = performance.now();
    const record = this.drain().find((r) => r.text === text);
    if (record === undefined) throw new Error("bench: the clock mark did not reach the kernel log");
    return { offset: record.at - (before + after) / 2, uncertainty: (after - before) / 2 };
  }

  close(): void {
    closeSync(this.fd);
  }
}

async function oomLines(h: ContainerHarness, clock: NotificationClock, eater: string): Promise<string[]> {
  const log = new KernelLog();
  try {
    const marks = [log.mark("start-1"), log.mark("start-2"), log.mark("start-3")];
    const { offset, uncertainty } = marks.reduce((a, b) => (b.uncertainty < a.uncertainty ? b : a));
    const cgroupLatency: number[] = [];
    const exitLatency: number[] = [];
    for (let round = 0; round < OOM_ROUNDS; round++) {
      const from = clock.mark;
      log.drain();
      await h.client.start(eater);
      // The shell (the init's only child) is the victim; it sleeps first, so it is there to be found.
      const init = (await h.client.inspect(eater)).process!.pid;
      const victim = readFileSync(`/proc/${init}/task/${init}/children`, "utf8").trim();
      const notified = await clock.next(
        (n) => n.type === "c_group" && n.container === eater && (n.memory.oom_kill ?? 0) >= 1,
        from,
      );
      const exited = await clock.next((n) => n.type === "exit" && n.container === eater, from);
      if (exited.n.type !== "exit" || exited.n.status.oom !== true)
        throw new Error(`bench: the eater did not end by OOM: ${JSON.stringify(exited.n)}`);
      // The kernel rate-limits its OOM reports, but never the "Killed process <pid>" line.
      const kill = log.drain().find((r) => r.text.includes(`Killed process ${victim} `));
      if (kill === undefined) throw new Error("bench: no OOM kill of the eater in the kernel log");
      const killedAt = kill.at - offset;
      cgroupLatency.push(notified.at - killedAt);
      exitLatency.push(exited.at - killedAt);
    }
    const drift = log.mark("end").offset - offset;
    return [
      versus(
        `OOM kill (kernel log) -> c_group notification counting it, at a client (${OOM_ROUNDS} runs)`,
        p50p99(cgroupLatency),
        `OOM kill -> exit notification ${p50p99(exitLatency)}`,
        ratio50(cgroupLatency, exitLatency),
      ),
      `  kernel clock to performance.now(): uncertainty ±${ms(uncertainty)}, drift over the runs ${ms(drift)}`,
    ];
  } finally {
    log.close();
  }
}

/** Reads every statistics file of each container's cgroups directly. */
function readDirectly(groups: string[]): void {
  for (const group of groups) {
    for (const [controller, file] of STATS_FILES)
      readFileSync(`/sys/fs/cgroup/${controller}/${group}/${file}`);
  }
}

async function statsLines(h: ContainerHarness, fleet: string[]): Promise<string[]> {
  const clients: Client[] = await Promise.all(Array.from({ length: CLIENTS }, () => connect(h.url)));
  try {
    for (const c of fleet) await h.client.start(c);
    const groups = fleet.map((c) => `${h.cgroup}/${c.slice(0, c.indexOf(":"))}`);
    const inspects: number[] = [];
    const refreshes: number[] = [];
    const direct: number[] = [];
    // Interleaved; round 0 warms up.
    for (let round = 0; round <= STATS_ROUNDS; round++) {
      const inspect = await timed(async () => {
        for (const c of fleet) {
          if ((await h.client.inspect(c)).process === null) throw new Error(`bench: ${c} is not running`);
        }
      });
      const refresh = await timed(async () => {
        if ((await h.client.statistics()).length !== fleet.length) throw new Error("bench: not all running");
      });
      const files = await timed(async () => readDirectly(groups));
      if (round === 0) continue;
      inspects.push(inspect);
      refreshes.push(refresh);
      direct.push(files);
    }
    // The command, interleaved with a bare node start and the direct reads.
    const commands: number[] = [];
    const bare: number[] = [];
    const directForCommand: number[] = [];
    for (let round = 0; round < CLI_ROUNDS; round++) {
      commands.push(await timed(() => run(process.execPath, [CLI, "--url", h.url, "stats"])));
      bare.push(await timed(() => run(process.execPath, ["-e", "0"])));
      directForCommand.push(await timed(async () => readDirectly(groups)));
    }
    const command = percentile(commands, 50);
    const commandBaseline = percentile(bare, 50) + percentile(directForCommand, 50);
    const baseline = `the same ${STATS_FILES.length} cgroup files of each read directly ${p50p99(direct)}`;
    return [
      versus(
        `statistics of ${FLEET} running containers through inspect, sequential (${STATS_ROUNDS} runs)`,
        p50p99(inspects),
        baseline,
        ratio50(inspects, direct),
      ),
      versusTarget(
        `skiff stats refresh of ${FLEET}, one statistics request (${STATS_ROUNDS} runs), ms per refresh`,
        p50p99(refreshes),
        baseline,
        ratio50(refreshes, direct),
        { text: "<= 1.5x", met: ratio50(refreshes, direct) <= 1.5 },
      ),
      versusTarget(
        `skiff stats of ${FLEET} as a command (process wall time, p50 of ${CLI_ROUNDS})`,
        ms(command),
        `node -e 0 ${ms(percentile(bare, 50))} + the same files read directly ${ms(percentile(directForCommand, 50))}`,
        command / commandBaseline,
        { text: "<= 1.5x", met: command / commandBaseline <= 1.5 },
      ),
    ];
  } finally {
    await Promise.all(
      clients.map(async (client, w) => {
        for (let i = w; i < FLEET; i += CLIENTS) await client.stop(fleet[i]!).catch(() => undefined);
        client.close();
      }),
    );
  }
}

export async function benchResources(): Promise<string[]> {
  const h = await ContainerHarness.create();
  let clock: NotificationClock | undefined;
  try {
    const eater = await h.add(
      h.name("eater"),
      "/bin/sh",
      ["-c", 'sleep 0.2; s=x; while true; do s="$s$s"; done'],
      `cgroups:\n  memory:\n    oom_monitor: true\n    memory_hard_limit: ${16 * MiB}\n    swappiness: 0\n`,
    );
    const fleet: string[] = [];
    for (let i = 0; i < FLEET; i++) fleet.push(await h.add(h.name(`idle${i}`), "/bin/sleep", ["1000"]));
    await h.startDaemon();
    clock = await NotificationClock.open(h.url);
    return [...(await oomLines(h, clock, eater)), ...(await statsLines(h, fleet))];
  } finally {
    clock?.close();
    await h.close();
  }
}
