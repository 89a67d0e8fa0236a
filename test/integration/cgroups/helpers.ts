// Shared setup for cgroup integration tests: a uniquely named Skiff root on every hierarchy, and processes
// that wait on stdin until they have been moved into a cgroup.
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { randomBytes } from "node:crypto";
import { readdir } from "node:fs/promises";
import { detectLayout, type CgroupLayout } from "../../../src/daemon/cgroups/layout.js";
import { CgroupTree } from "../../../src/daemon/cgroups/tree.js";
import { killCgroup } from "../../../src/daemon/cgroups/kill.js";
import { within } from "../../helpers/wait.js";

export interface TestCgroups {
  layout: CgroupLayout;
  tree: CgroupTree;
  /** Creates an absolute cgroup path below the test root. */
  create(relative: string): Promise<string>;
  /** Starts `sh -c script` held before `script` runs until release() is called, so it can be moved first. */
  spawnHeld(script: string): Held;
  /** Kills what the test started, removes every cgroup it created and the root. */
  cleanup(): Promise<void>;
}

export interface Held {
  child: ChildProcess;
  pid: number;
  exited: Promise<[number | null, NodeJS.Signals | null]>;
  release(): void;
}

export async function setupTestCgroups(): Promise<TestCgroups> {
  const layout = await detectLayout();
  const tree = new CgroupTree(layout, `skiff-test-cgroups-${randomBytes(4).toString("hex")}`);
  await tree.createRoot();
  const children: ChildProcess[] = [];
  return {
    layout,
    tree,
    async create(relative) {
      const path = `${tree.rootPath}/${relative}`;
      await tree.create(path);
      return path;
    },
    spawnHeld(script) {
      const child = spawn("sh", ["-c", `read _go; ${script}`], { stdio: ["pipe", "pipe", "inherit"] });
      children.push(child);
      if (child.pid === undefined) throw new Error("sh did not start");
      const exited = once(child, "exit") as Promise<[number | null, NodeJS.Signals | null]>;
      return { child, pid: child.pid, exited, release: () => child.stdin?.write("go\n") };
    },
    async cleanup() {
      // Every cgroup below the test root, deepest first. Killing them first also thaws frozen ones, so the
      // processes the test started can exit.
      const paths = new Set<string>();
      for (const mount of layout.hierarchies) {
        // The root may be gone already (a test of the daemon's own shutdown removed it).
        const entries = await readdir(`${mount}${tree.rootPath}`, {
          recursive: true,
          withFileTypes: true,
        }).catch((error: unknown) => {
          if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
          throw error;
        });
        for (const entry of entries) {
          if (entry.isDirectory()) paths.add(`${entry.parentPath.slice(mount.length)}/${entry.name}`);
        }
      }
      const deepestFirst = [...paths].sort((a, b) => b.split("/").length - a.split("/").length);
      for (const path of deepestFirst) await killCgroup(layout, path, { timeoutMs: 2000 });
      for (const child of children) {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill("SIGKILL");
          await within(once(child, "exit"), {
            timeoutMs: 20_000,
            what: `the test's sh (pid ${child.pid}) to die`,
          });
        }
      }
      for (const path of deepestFirst) await tree.remove(path);
      await tree.removeRoot();
    },
  };
}
