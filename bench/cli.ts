/**
 * `skiff` command latency: `skiff ls` against an idle daemon, process start to exit, beside a bare
 * `node -e 0` measured in the same run (interleaved, so machine load hits both alike).
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { startDaemonProcess } from "../test/helpers/daemon.js";
import { ms, percentile, versusTarget } from "./stats.js";

const ROUNDS = 25;
/** docs/footprint.md: the `skiff` command within 1.5x of starting node itself. */
const TARGET_RATIO = 1.5;
const SKIFF = fileURLToPath(new URL("../cli/skiff.js", import.meta.url));

async function timedRun(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const start = performance.now();
  const child = spawn(process.execPath, args, { stdio: ["ignore", "ignore", "inherit"], env });
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  if (code !== 0) throw new Error(`node ${args.join(" ")} exited with ${code}`);
  return performance.now() - start;
}

export async function benchCli(): Promise<string[]> {
  const d = await startDaemonProcess();
  try {
    const env = { ...process.env, SKIFF_URL: d.url };
    const [skiff, bare]: [number[], number[]] = [[], []];
    await timedRun([SKIFF, "ls"], env); // warm the page cache (and the compile cache where Node has one)
    for (let i = 0; i < ROUNDS; i++) {
      skiff.push(await timedRun([SKIFF, "ls"], env));
      bare.push(await timedRun(["-e", "0"], env));
    }
    const [s, b] = [percentile(skiff, 50), percentile(bare, 50)];
    return [
      versusTarget(
        `skiff ls, p50 of ${ROUNDS} (node ${process.version})`,
        ms(s),
        `node -e 0 ${ms(b)}`,
        s / b,
        {
          text: `<= ${TARGET_RATIO}x`,
          met: s / b <= TARGET_RATIO,
        },
      ),
    ];
  } finally {
    await d.stop();
  }
}
