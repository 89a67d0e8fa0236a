/**
 * A container's console and its manifest sockets, end to end through a real skiffd: the container
 * talks to its console from inside and accepts on its socket fd, the host sees the socket files
 * appear with the container and go away after it.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { access, mkdir, stat, writeFile } from "node:fs/promises";
import { connect as netConnect } from "node:net";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { PermissionDeniedError, connect } from "../../../src/client/index.js";
import { containerConsolePath } from "../../../src/daemon/console/container-console.js";
import { ContainerHarness } from "../../helpers/containers.js";
import { waitFor as waitForCondition } from "../../helpers/wait.js";

/**
 * Busybox has no Unix socket client or server, so the containers get this one (static, bind-mounted).
 * `ucat connect PATH N`: send stdin to the socket, print N lines of the answer.
 * `ucat accept FD`: accept one connection on the listening FD, answer its first line with "echo: <line>".
 */
const UCAT_C = String.raw`#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
int main(int argc, char **argv) {
  char c;
  if (argc == 4 && strcmp(argv[1], "connect") == 0) {
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    strncpy(addr.sun_path, argv[2], sizeof addr.sun_path - 1);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    if (s < 0 || connect(s, (struct sockaddr *)&addr, sizeof addr) < 0) { perror("connect"); return 2; }
    char buf[4096];
    ssize_t n;
    while ((n = read(0, buf, sizeof buf)) > 0)
      if (write(s, buf, n) != n) { perror("write"); return 2; }
    int lines = atoi(argv[3]);
    while (lines > 0 && read(s, &c, 1) == 1) {
      if (write(1, &c, 1) != 1) return 2;
      if (c == '\n') lines--;
    }
    return lines == 0 ? 0 : 3;
  }
  if (argc == 3 && strcmp(argv[1], "accept") == 0) {
    int conn = accept(atoi(argv[2]), NULL, NULL);
    if (conn < 0) { perror("accept"); return 2; }
    char line[256];
    size_t len = 0;
    while (len < sizeof line - 1 && read(conn, &c, 1) == 1 && c != '\n') line[len++] = c;
    line[len] = 0;
    dprintf(conn, "echo: %s\n", line);
    return 0;
  }
  fprintf(stderr, "usage: ucat connect PATH LINES | ucat accept FD\n");
  return 2;
}
`;

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/** Polls until `path` is gone; cleanup after an exit runs after the exit notification. */
async function waitGone(path: string, timeoutMs = 10_000): Promise<void> {
  await waitForCondition(async () => !(await exists(path)), { timeoutMs, what: `${path} to be removed` });
}

/** Connects from the host, sends one line and resolves with the first line of the answer. */
function askOnce(path: string, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let answer = "";
    const socket = netConnect({ path }, () => socket.write(line + "\n"));
    socket.on("data", (d: Buffer) => {
      answer += d.toString();
      if (answer.includes("\n")) {
        socket.destroy();
        resolve(answer.slice(0, answer.indexOf("\n")));
      }
    });
    socket.on("error", reject);
    socket.on("close", () => reject(new Error(`closed without an answer (got ${JSON.stringify(answer)})`)));
  });
}

describe("container consoles and sockets through skiffd", () => {
  let h: ContainerHarness;
  let consoleUser: string;
  let server: string;
  let runDir: string;
  const stdout = async (id: string): Promise<string[]> =>
    (await h.logLines(id)).filter((l) => l.startsWith("stdout ")).map((l) => l.slice("stdout ".length));

  before(async () => {
    h = await ContainerHarness.create();
    runDir = join(h.dir, "state", "run");
    const tools = join(h.dir, "tools");
    await mkdir(tools);
    await writeFile(join(tools, "ucat.c"), UCAT_C);
    await promisify(execFile)("cc", ["-static", "-O2", "-o", join(tools, "ucat"), join(tools, "ucat.c")]);
    const toolsMount = `  /tools:\n    type: bind\n    host: ${tools}\n`;

    const requests = [
      '{"connect":{"version":"0.9.2","subscribe_notifications":false}}',
      '{"request":"ident"}',
      '{"request":"list"}',
      '{"request":{"kill":{"container":"other:1.0.0","signal":9}}}',
    ];
    consoleUser = await h.add(
      h.name("console"),
      "/bin/sh",
      [
        "-c",
        [
          "ls -l $SKIFF_CONSOLE",
          "echo console=$NORTHSTAR_CONSOLE skiff=$SKIFF_CONSOLE",
          `{ ${requests.map((r) => `echo '${r}'`).join("; ")}; } | /tools/ucat connect $SKIFF_CONSOLE ${requests.length}`,
          "echo done",
          "exec sleep 1000",
        ].join("; "),
      ],
      `${toolsMount}console:\n  permissions: [ident, list]\n`,
    );
    server = await h.add(
      h.name("server"),
      "/bin/sh",
      [
        "-c",
        "echo fds=$NORTHSTAR_SOCKET_first,$NORTHSTAR_SOCKET_second skiff=$SKIFF_SOCKET_first,$SKIFF_SOCKET_second; " +
          "readlink /proc/self/fd/$NORTHSTAR_SOCKET_second; exec /tools/ucat accept $NORTHSTAR_SOCKET_second",
      ],
      `${toolsMount}sockets:\n  first:\n    type: stream\n    mode: 0o600\n` +
        "  second:\n    type: stream\n    mode: 0o660\n    uid: 1000\n    gid: 1000\n",
    );
    await h.startDaemon();
  });
  after(() => h.close());

  it("a container reaches its console from inside, with exactly its permissions", async () => {
    const socketPath = containerConsolePath(join(runDir, "consoles"), consoleUser);
    assert.equal(await exists(socketPath), false, "no console before the start");
    const from = h.notifications.length;
    await h.client.start(consoleUser);
    await h.waitForLog(consoleUser, "stdout done");
    const out = await stdout(consoleUser);

    // The socket is bind-mounted at the named path, owned by the container's user.
    assert.match(out[0]!, /^srw------- +1 1000 +1000 .* \/dev\/\.skiff\/console$/);
    // NORTHSTAR_CONSOLE is a connected descriptor (skiff-init's), SKIFF_CONSOLE the path.
    assert.match(out[1]!, /^console=\d+ skiff=\/dev\/\.skiff\/console$/);
    const [connected, ident, list, kill] = out.slice(2, 6).map((l) => JSON.parse(l) as unknown);
    assert.ok(
      connected && typeof connected === "object" && "connect_ack" in connected,
      JSON.stringify(connected),
    );
    assert.deepEqual(ident, { response: { ident: consoleUser } });
    const listed = (list as { response: { list: string[] } }).response.list;
    assert.ok(listed.includes(consoleUser), JSON.stringify(list));
    assert.ok(JSON.stringify(kill).includes("permission_denied"), JSON.stringify(kill));

    // The host side of the same console: the socket exists while the container runs.
    assert.ok((await stat(socketPath)).isSocket());
    const client = await connect(`unix://${socketPath}`);
    try {
      assert.equal(await client.ident(), consoleUser, "every connection on it is the container");
      await assert.rejects(client.kill(consoleUser, 9), PermissionDeniedError);
    } finally {
      client.close();
    }

    await h.client.stop(consoleUser, 1);
    await h.waitForExit(consoleUser, from);
    await waitGone(socketPath);
  });

  it("a container accepts on the socket fd named in NORTHSTAR_SOCKET_<name>; the host connects by path", async () => {
    const from = h.notifications.length;
    await h.client.start(server);
    await h.waitForLog(server, "stdout fds=4,5 skiff=4,5");
    const second = join(runDir, "sockets", `${server}:second`);
    const info = await stat(second);
    assert.ok(info.isSocket());
    assert.equal(info.mode & 0o7777, 0o660);
    assert.equal(info.uid, 1000);
    assert.equal(info.gid, 1000);
    assert.equal((await stat(join(runDir, "sockets", `${server}:first`))).mode & 0o7777, 0o600);

    assert.equal(await askOnce(second, "ping"), "echo: ping");
    assert.deepEqual(await h.waitForExit(server, from), { type: "exit", code: 0, reason: "shutdown" });
    assert.match((await stdout(server))[1]!, /^socket:\[\d+\]$/);
    await waitGone(second);
  });
});
