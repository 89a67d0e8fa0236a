// Memory cost of supervising one running container: skiff-monitor versus a
// resident `runc run` and versus conmon, all for the same busybox container; and
// the container's PID 1, skiff-init, versus the bare `sleep` it runs.
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { createTestEnv, type TestEnv } from "../test/integration/monitor/env.js";
import { versus, versusTarget } from "./stats.js";

/** docs/footprint.md: the monitor's resident set per container. */
const MONITOR_RSS_TARGET_KIB = 400;

interface Memory {
  rssKiB: number;
  pssKiB: number;
}

function memoryOf(pid: number): Memory {
  const field = (text: string, name: string): number =>
    Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(text)?.[1]);
  return {
    rssKiB: field(readFileSync(`/proc/${pid}/status`, "utf8"), "VmRSS"),
    pssKiB: field(readFileSync(`/proc/${pid}/smaps_rollup`, "utf8"), "Pss"),
  };
}

async function waitFor<T>(what: string, probe: () => T | undefined): Promise<T> {
  for (let i = 0; i < 500; i++) {
    try {
      const value = probe();
      if (value !== undefined) return value;
    } catch {
      // not there yet
    }
    await sleep(10);
  }
  throw new Error(`bench: gave up waiting for ${what}`);
}

function runcState(env: TestEnv, id: string): { status: string; pid: number } | undefined {
  const out = execFileSync("runc", ["--root", env.runtimeRoot, "state", id], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "ignore"],
  });
  return JSON.parse(out) as { status: string; pid: number };
}

function stopContainer(env: TestEnv, id: string): void {
  execFileSync("runc", ["--root", env.runtimeRoot, "delete", "--force", id], { stdio: "ignore" });
}

/** The monitor's memory, and that of skiff-init and of its child (`sleep`) in the container. */
async function skiffMonitor(env: TestEnv): Promise<{ monitor: Memory; init: Memory; app: Memory }> {
  const conn = await env.launch("bench-skiff", ["sleep", "600"], {
    io: { stdout: "discard", stderr: "discard" },
  });
  await conn.start();
  const initPid = conn.initPid!;
  const appPid = await waitFor(
    "the app under skiff-init",
    () =>
      Number(readFileSync(`/proc/${initPid}/task/${initPid}/children`, "utf8").trim().split(" ")[0]) ||
      undefined,
  );
  const memory = { monitor: memoryOf(conn.monitorPid), init: memoryOf(initPid), app: memoryOf(appPid) };
  await conn.kill("SIGKILL");
  await conn.exited();
  return memory;
}

async function runcRun(env: TestEnv): Promise<Memory> {
  const id = `${env.cgroupPrefix.slice(1)}-bench-runc`;
  const bundle = env.bundle("bench-runc", ["sleep", "600"]);
  const runc = spawn("runc", ["--root", env.runtimeRoot, "run", "--bundle", bundle, id], {
    stdio: ["ignore", "ignore", "ignore"],
  });
  const exited = new Promise((resolve) => runc.once("exit", resolve));
  await waitFor("runc run", () => (runcState(env, id)?.status === "running" ? true : undefined));
  const memory = memoryOf(runc.pid!);
  stopContainer(env, id);
  await exited;
  return memory;
}

async function conmon(env: TestEnv): Promise<Memory> {
  const id = `${env.cgroupPrefix.slice(1)}-bench-conmon`;
  const bundle = env.bundle("bench-conmon", ["sleep", "600"]);
  const dir = join(env.dir, "bench-conmon", "conmon");
  mkdirSync(join(dir, "exits"), { recursive: true });
  execFileSync(
    "conmon",
    [
      ...["--api-version", "1", "-c", id, "-u", id, "-n", id, "-r", "/usr/sbin/runc", "-b", bundle],
      ...[
        "-p",
        join(dir, "init.pid"),
        "-P",
        join(dir, "conmon.pid"),
        "-l",
        `k8s-file:${join(dir, "ctr.log")}`,
      ],
      ...[
        "--exit-dir",
        join(dir, "exits"),
        "--socket-dir-path",
        dir,
        `--runtime-arg=--root=${env.runtimeRoot}`,
      ],
    ],
    { stdio: "ignore" },
  );
  const conmonPid = await waitFor(
    "conmon pid",
    () => Number(readFileSync(join(dir, "conmon.pid"), "utf8")) || undefined,
  );
  await waitFor("created container", () => (runcState(env, id)?.status === "created" ? true : undefined));
  execFileSync("runc", ["--root", env.runtimeRoot, "start", id]);
  const memory = memoryOf(conmonPid);
  stopContainer(env, id);
  await waitFor("conmon exit", () => {
    try {
      process.kill(conmonPid, 0);
      return undefined;
    } catch {
      return true;
    }
  });
  return memory;
}

/** Lines comparing the supervisor's memory per running container (RSS and PSS), all measured in one run. */
export async function benchMonitor(): Promise<string[]> {
  const env = createTestEnv();
  try {
    const skiff = await skiffMonitor(env);
    const rows: [string, Memory][] = [
      ["skiff-monitor", skiff.monitor],
      ["runc run (resident)", await runcRun(env)],
      ["conmon", await conmon(env)],
    ];
    const conmonMemory = rows[2]![1];
    const kib = (v: number): string => `${v} KiB`;
    return [
      "supervisor memory per running container (KiB)",
      ...rows.map(
        ([name, m]) =>
          `  ${name.padEnd(22)} RSS ${String(m.rssKiB).padStart(7)}  PSS ${String(m.pssKiB).padStart(7)}`,
      ),
      versusTarget(
        "skiff-monitor RSS",
        kib(skiff.monitor.rssKiB),
        `conmon ${kib(conmonMemory.rssKiB)}`,
        skiff.monitor.rssKiB / conmonMemory.rssKiB,
        { text: `<= ${MONITOR_RSS_TARGET_KIB} KiB`, met: skiff.monitor.rssKiB <= MONITOR_RSS_TARGET_KIB },
      ),
      versus(
        "skiff-monitor PSS",
        kib(skiff.monitor.pssKiB),
        `conmon ${kib(conmonMemory.pssKiB)}`,
        skiff.monitor.pssKiB / conmonMemory.pssKiB,
      ),
      versus(
        "skiff-init (container PID 1) RSS",
        kib(skiff.init.rssKiB),
        `the app it runs (busybox sleep) ${kib(skiff.app.rssKiB)}`,
        skiff.init.rssKiB / skiff.app.rssKiB,
      ),
    ];
  } finally {
    env.cleanup();
  }
}
