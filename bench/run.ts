/**
 * `npm run bench`: every benchmark prints its figure beside a baseline measured in the same run,
 * with the ratio. Pass names to run a subset: `npm run bench -- console npk`.
 */
import { benchCgroups } from "./cgroups.js";
import { benchCli } from "./cli.js";
import { benchConsole } from "./console.js";
import { benchContainers } from "./containers.js";
import { benchCri } from "./cri.js";
import { benchExecutor } from "./executor.js";
import { benchInstall } from "./install.js";
import { benchMonitor } from "./monitor.js";
import { benchNpk } from "./npk.js";
import { benchFreeze, benchPower } from "./power.js";
import { benchResources } from "./resources.js";
import { benchVerity } from "./verity.js";
import { benchRuntimes } from "./runtimes.js";
import { benchScale } from "./scale.js";

const SUITES: Record<string, () => Promise<string[]>> = {
  console: benchConsole,
  npk: benchNpk,
  install: benchInstall,
  monitor: benchMonitor,
  cgroups: benchCgroups,
  containers: benchContainers,
  resources: benchResources,
  power: benchPower,
  freeze: benchFreeze,
  executor: benchExecutor,
  verity: benchVerity,
  runtimes: benchRuntimes,
  cli: benchCli,
  scale: benchScale,
  cri: benchCri,
};

const wanted = process.argv.slice(2);
for (const [name, run] of Object.entries(SUITES)) {
  if (wanted.length > 0 && !wanted.includes(name)) continue;
  console.log(`== ${name}`);
  try {
    for (const line of await run()) console.log(`  ${line}`);
  } catch (e) {
    console.log(`  FAILED: ${(e as Error).stack ?? String(e)}`);
    process.exitCode = 1;
  }
}
