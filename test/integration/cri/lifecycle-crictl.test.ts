/**
 * The pod lifecycle driven by the unmodified `crictl` (cri-tools v1.26.1, built by
 * scripts/build-crictl.sh; not in Debian 12), when it is installed: pull, runp (a JSON pod
 * config), create (a YAML container config), start, ps, exec, logs, port-forward, stop, stopp,
 * rmp, rmi against an in-process skiffd, with the short ids crictl prints (as a user types them).
 * Skipped when crictl is absent.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { spawn } from "node:child_process";
import pino from "pino";
import { parseConfig } from "../../../src/daemon/config/load.js";
import { Runtime } from "../../../src/daemon/runtime.js";
import { testPodNetwork } from "./pods-network.js";
import { pushBusyboxImage, type BusyboxImage } from "./busybox-image.js";
import { cleanupDaemon, testCgroupName } from "../../helpers/cleanup.js";
import { testConfigText } from "../../helpers/daemon.js";
import { waitFor, within } from "../../helpers/wait.js";
import { startRegistry, type Registry } from "../oci-image/fixtures.js";

/** busybox with the applets the lifecycle runs. */
const BOX: BusyboxImage = {
  name: "e2e/box:1",
  applets: ["sh", "echo", "sleep", "cat", "mkdir", "hostname", "httpd", "wget", "touch", "ls", "nc"],
};

const WAIT_MS = 60_000;
const WEB_PORT = 8080;
const CRICTL = ["/usr/local/bin/crictl", "/usr/bin/crictl"].find((p) => existsSync(p));

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

void describe(
  "CRI: a pod's lifecycle driven by crictl",
  { skip: CRICTL === undefined ? "crictl is not installed" : false },
  () => {
    const net = testPodNetwork();
    let work: string;
    let registry: Registry;
    let image: string;
    let dir: string;
    let cgroup: string;
    let runtime: Runtime | undefined;

    function crictl(args: string[], input = ""): Promise<Ran> {
      const child = spawn(CRICTL!, ["--config", join(work, "crictl.yaml"), ...args], {
        stdio: ["pipe", "pipe", "pipe"],
      });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
      child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      child.stdin.end(input);
      return within(
        new Promise((resolve) => child.once("close", (code) => resolve({ code, stdout, stderr }))),
        { timeoutMs: WAIT_MS, what: `crictl ${args.join(" ")}`, detail: () => stderr },
      );
    }

    /** crictl's stdout, asserting that it succeeded. */
    async function ok(args: string[], input = ""): Promise<string> {
      const ran = await crictl(args, input);
      assert.equal(ran.code, 0, `crictl ${args.join(" ")}: ${ran.stderr}`);
      return ran.stdout;
    }

    before(async () => {
      work = await mkdtemp(join(tmpdir(), "skiff-cri-crictl-"));
      registry = await startRegistry(work);
      image = await pushBusyboxImage(work, registry, BOX);
      dir = await mkdtemp(join(tmpdir(), "skiff-test-"));
      cgroup = testCgroupName();
      runtime = await Runtime.start(
        parseConfig(testConfigText(dir, cgroup, (d) => `[cri]\nsocket = "${d}/cri.sock"\n${net.toml(1)}`)),
        pino({ level: "silent" }),
      );
      await writeFile(
        join(work, "crictl.yaml"),
        `runtime-endpoint: unix://${dir}/cri.sock\nimage-endpoint: unix://${dir}/cri.sock\ntimeout: 30\n`,
      );
    });

    after(async () => {
      if (runtime) {
        const pods = await crictl(["pods", "-q"]).catch(() => ({ stdout: "" }));
        for (const id of pods.stdout.split("\n").filter((l) => l !== ""))
          await crictl(["rmp", "-f", id]).catch(() => undefined);
        runtime.requestShutdown({ kind: "host", cause: "test done" });
        await within(runtime.stopped, { timeoutMs: WAIT_MS, what: "the daemon to stop" });
      }
      if (dir) await cleanupDaemon({ dir, cgroup });
      await net.remove();
      await registry?.stop();
      if (work) await rm(work, { recursive: true, force: true });
    });

    void it("runs a pod and two containers, execs, reads logs, forwards a port, stops and removes them", async () => {
      await ok(["pull", image]);
      const logs = join(work, "logs");
      await writeFile(
        join(work, "pod.json"),
        JSON.stringify({
          metadata: { name: "web", namespace: "default", uid: "web-uid-1", attempt: 1 },
          hostname: "web",
          log_directory: logs,
          dns_config: {
            servers: ["10.96.0.10"],
            searches: ["default.svc.cluster.local"],
            options: ["ndots:5"],
          },
          labels: { app: "web" },
          linux: {},
        }),
      );
      // YAML, as crictl reads either.
      await writeFile(
        join(work, "server.yaml"),
        [
          "metadata:",
          "  name: server",
          "image:",
          `  image: ${image}`,
          "command: [/bin/sh, -c]",
          "args:",
          `  - mkdir -p /www && echo hello-from-web > /www/index.html && echo serving && exec httpd -f -p ${WEB_PORT} -h /www`,
          "log_path: server.log",
          "labels:",
          "  role: server",
          "",
        ].join("\n"),
      );
      await writeFile(
        join(work, "job.yaml"),
        [
          "metadata:",
          "  name: job",
          "image:",
          `  image: ${image}`,
          "command: [/bin/sh, -c, 'echo job-out; echo job-err >&2; exit 4']",
          "log_path: job.log",
          "labels:",
          "  role: job",
          "",
        ].join("\n"),
      );
      const pod = (await ok(["runp", join(work, "pod.json")])).trim();
      assert.match(pod, /^[0-9a-f]{64}$/);
      const shortPod = pod.slice(0, 13); // what `crictl pods` prints
      const pods = await ok(["pods", "--label", "app=web", "--state", "ready", "-q"]);
      assert.equal(pods.trim(), pod);

      const server = (
        await ok(["create", shortPod, join(work, "server.yaml"), join(work, "pod.json")])
      ).trim();
      const job = (await ok(["create", shortPod, join(work, "job.yaml"), join(work, "pod.json")])).trim();
      assert.match(server, /^[0-9a-f]{64}$/);
      const shortServer = server.slice(0, 13);
      const shortJob = job.slice(0, 13);
      await ok(["start", shortServer]);
      await ok(["start", shortJob]);

      const ps = await ok(["ps", "-a", "--pod", shortPod]);
      assert.match(ps, new RegExp(`^${shortServer} .* Running +server +0 +${shortPod}`, "m"));
      await waitFor(
        async () => ((await ok(["ps", "-a", "--state", "exited", "-q"])).trim() === job ? true : undefined),
        { timeoutMs: WAIT_MS, what: "the job to exit" },
      );
      const inspected = JSON.parse(await ok(["inspect", shortJob])) as {
        status: { state: string; exitCode: number; reason: string };
      };
      assert.equal(inspected.status.state, "CONTAINER_EXITED");
      assert.equal(inspected.status.exitCode, 4);

      // crictl logs writes the container's stdout to its stdout and stderr to its stderr.
      const jobLogs = await crictl(["logs", shortJob]);
      assert.equal(jobLogs.code, 0, jobLogs.stderr);
      assert.equal(jobLogs.stdout, "job-out\n");
      assert.equal(jobLogs.stderr, "job-err\n");
      await waitFor(async () => ((await ok(["logs", shortServer])) === "serving\n" ? true : undefined), {
        timeoutMs: WAIT_MS,
        what: "the server to log",
      });

      const exec = await crictl(
        ["exec", "-i", shortServer, "sh", "-c", "cat; hostname; wget -q -O - 127.0.0.1:8080/index.html"],
        "in\n",
      );
      assert.equal(exec.stdout, "in\nweb\nhello-from-web\n", exec.stderr);
      assert.equal(exec.code, 0);
      const failed = await crictl(["exec", shortServer, "sh", "-c", "exit 3"]);
      assert.match(failed.stderr, /command terminated with exit code 3/);
      const sync = await ok(["exec", "-s", shortServer, "cat", "/etc/resolv.conf"]);
      assert.match(sync, /^search default\.svc\.cluster\.local\nnameserver 10\.96\.0\.10\noptions ndots:5\n/);

      // crictl port-forward listens on a local port of its own and forwards each connection.
      const local = await freePort();
      const forwarder = spawn(
        CRICTL!,
        ["--config", join(work, "crictl.yaml"), "port-forward", shortPod, `${local}:${WEB_PORT}`],
        { stdio: ["ignore", "pipe", "pipe"] },
      );
      let said = "";
      forwarder.stdout.on("data", (d: Buffer) => (said += d.toString()));
      forwarder.stderr.on("data", (d: Buffer) => (said += d.toString()));
      try {
        await waitFor(() => (said.includes(`Forwarding from 127.0.0.1:${local}`) ? true : undefined), {
          timeoutMs: WAIT_MS,
          what: "crictl port-forward to listen",
          detail: () => said,
        });
        const reply = await httpGet(local, "/index.html");
        assert.match(reply, /^HTTP\/1\.[01] 200 OK\r\n/);
        assert.match(reply, /\r\n\r\nhello-from-web\n$/);
      } finally {
        forwarder.kill("SIGKILL");
      }

      await ok(["stop", "-t", "5", shortServer]);
      const stopped = JSON.parse(await ok(["inspect", shortServer])) as {
        status: { state: string; exitCode: number };
      };
      assert.equal(stopped.status.state, "CONTAINER_EXITED");
      assert.equal(stopped.status.exitCode, 143, "httpd ended by SIGTERM");
      await ok(["rm", shortJob]);
      assert.deepEqual((await ok(["ps", "-a", "-q"])).trim().split("\n"), [server]);
      await ok(["stopp", shortPod]);
      assert.match(await ok(["pods"]), new RegExp(`^${shortPod} .* NotReady +web`, "m"));
      await ok(["rmp", shortPod]);
      assert.equal((await ok(["pods", "-q"])).trim(), "");
      assert.equal((await ok(["ps", "-a", "-q"])).trim(), "");
      await ok(["rmi", image]);
      assert.equal((await ok(["images", "-q"])).trim(), "");
    });
  },
);

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** An HTTP/1.0 GET over a plain connection, answered to its end. */
function httpGet(port: number, path: string): Promise<string> {
  return within(
    new Promise<string>((resolve, reject) => {
      const socket = connect(port, "127.0.0.1", () => socket.write(`GET ${path} HTTP/1.0\r\n\r\n`));
      let got = "";
      socket.on("data", (d: Buffer) => (got += d.toString()));
      socket.on("end", () => resolve(got));
      socket.on("error", reject);
    }),
    { timeoutMs: WAIT_MS, what: `GET ${path} through port ${port}` },
  );
}
