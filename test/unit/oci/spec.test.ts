import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  buildOciSpec,
  RLIM_INFINITY,
  serializeOciSpec,
  SKIFF_INIT_PATH_IN_CONTAINER,
  type OciMount,
} from "../../../src/daemon/oci/spec.js";
import { BASE, inputFor } from "./fixtures.js";

const envOf = (env: string[]) =>
  Object.fromEntries(
    env.map((entry) => [entry.slice(0, entry.indexOf("=")), entry.slice(entry.indexOf("=") + 1)]),
  );
const mountAt = (mounts: OciMount[], destination: string) =>
  mounts.find((m) => m.destination === destination);

/** skiff-init's options when the manifest has no proc mount (CAP_SYS_ADMIN 21, CAP_SETPCAP 8). */
const UNMOUNT = ["--unmount-proc", "--drop-cap", "21", "--drop-cap", "8"];
const PROC = "mounts:\n  /proc:\n    type: proc\n";

void describe("buildOciSpec: process", () => {
  void it("runs the app under Skiff's init with the manifest's user and args", () => {
    const { spec, warnings, preserveFds } = buildOciSpec(inputFor(BASE + "args: [one, two]\n"));
    assert.equal(SKIFF_INIT_PATH_IN_CONTAINER, "/dev/.skiff/init");
    assert.deepEqual(spec.process.args, ["/dev/.skiff/init", ...UNMOUNT, "--", "/binary", "one", "two"]);
    assert.deepEqual(spec.process.user, { uid: 1000, gid: 1001 });
    assert.equal(spec.process.noNewPrivileges, true);
    assert.equal(spec.process.terminal, false);
    assert.equal(spec.process.cwd, "/");
    assert.deepEqual(spec.root, { path: "/run/skiff/containers/hello:0.0.1", readonly: true });
    assert.equal(spec.ociVersion, "1.0.2");
    assert.equal(preserveFds, 1);
    assert.deepEqual(warnings, []);
  });

  void it("sets the runtime variables under Northstar and Skiff names after the manifest env", () => {
    const { spec } = buildOciSpec(
      inputFor(BASE + "env:\n  LD_LIBRARY_PATH: /lib\n", { extraEnv: { TZ: "UTC" } }),
    );
    assert.deepEqual(envOf(spec.process.env), {
      LD_LIBRARY_PATH: "/lib",
      TZ: "UTC",
      NORTHSTAR_NAME: "hello",
      NORTHSTAR_VERSION: "0.0.1",
      NORTHSTAR_CONTAINER: "hello:0.0.1",
      SKIFF_NAME: "hello",
      SKIFF_VERSION: "0.0.1",
      SKIFF_CONTAINER: "hello:0.0.1",
    });
  });

  void it("lets start-request overrides replace init, args and env", () => {
    const input = inputFor(BASE + "args: [one]\nenv:\n  A: manifest\n", {
      overrides: { init: "/bin/sh", args: ["-c", "true"], env: { B: "request", SKIFF_NAME: "spoof" } },
    });
    const { spec, warnings } = buildOciSpec(input);
    assert.deepEqual(spec.process.args, ["/dev/.skiff/init", ...UNMOUNT, "--", "/bin/sh", "-c", "true"]);
    const env = envOf(spec.process.env);
    assert.equal(env.A, undefined);
    assert.equal(env.B, "request");
    assert.equal(env.SKIFF_NAME, "hello");
    assert.match(warnings.join("\n"), /SKIFF_NAME is set by the runtime/);
    const argsOnly = buildOciSpec(inputFor(BASE + "args: [one]\n", { overrides: { args: [] } }));
    assert.deepEqual(argsOnly.spec.process.args, ["/dev/.skiff/init", ...UNMOUNT, "--", "/binary"]);
  });

  void it("refuses to start a resource container", () => {
    assert.throws(
      () => buildOciSpec(inputFor("name: res\nversion: 0.0.1\nuid: 1\ngid: 1\n")),
      /resource container/,
    );
  });

  void it("passes sockets as fds 4.. sorted by name (as Northstar) and names them in the environment", () => {
    const yaml =
      BASE +
      "sockets:\n  foo:\n    type: stream\n    mode: 0o600\n  bar:\n    type: datagram\n    mode: 0o600\n";
    const { spec, preserveFds } = buildOciSpec(inputFor(yaml));
    const env = envOf(spec.process.env);
    assert.equal(env.NORTHSTAR_SOCKET_bar, "4");
    assert.equal(env.SKIFF_SOCKET_bar, "4");
    assert.equal(env.NORTHSTAR_SOCKET_foo, "5");
    assert.equal(preserveFds, 3);
    assert.throws(() => buildOciSpec(inputFor(yaml, { preservedFds: 2 })), /need 3/);
  });

  void it("grants exactly the listed capabilities in every set, none when absent", () => {
    const caps = buildOciSpec(inputFor(BASE + PROC + "capabilities: [CAP_NET_RAW, CAP_KILL]\n")).spec.process
      .capabilities;
    for (const set of Object.values(caps)) assert.deepEqual(set, ["CAP_NET_RAW", "CAP_KILL"]);
    const none = buildOciSpec(inputFor(BASE + PROC)).spec.process.capabilities;
    assert.deepEqual(none, { bounding: [], effective: [], inheritable: [], permitted: [], ambient: [] });
  });

  void it("without a proc mount, lets skiff-init unmount runc's /proc and drop what it needed for that", () => {
    const { spec } = buildOciSpec(
      inputFor(BASE + "capabilities: [CAP_SETPCAP]\nseccomp:\n  allow:\n    read: any\n"),
    );
    assert.deepEqual(spec.process.args, [
      "/dev/.skiff/init",
      "--unmount-proc",
      "--drop-cap",
      "21",
      "--",
      "/binary",
    ]);
    for (const set of Object.values(spec.process.capabilities))
      assert.deepEqual(set, ["CAP_SETPCAP", "CAP_SYS_ADMIN"]);
    // The filter lets init's calls through; it is built from the manifest's capabilities (no CAP_SYS_ADMIN rules).
    const allowed = spec.linux.seccomp!.syscalls.flatMap((rule) => rule.names);
    for (const name of ["umount2", "prctl", "capget", "capset"]) assert.ok(allowed.includes(name), name);
    assert.equal(spec.mounts.filter((m) => m.destination === "/proc").length, 1);
    const asked = buildOciSpec(inputFor(BASE + "mounts:\n  /proc/:\n    type: proc\n")).spec;
    assert.deepEqual(asked.process.args, ["/dev/.skiff/init", "--", "/binary"]);
    assert.equal(asked.mounts.filter((m) => m.destination === "/proc").length, 1);
  });

  void it("resolves supplementary groups through the host's group ids", () => {
    const input = inputFor(BASE + "suppl_groups: [inet, log, nope]\n", {
      groupIds: { inet: 3003, log: 1007 },
    });
    const { spec, warnings } = buildOciSpec(input);
    assert.deepEqual(spec.process.user.additionalGids, [3003, 1007]);
    assert.match(warnings.join("\n"), /unknown group nope/);
  });

  void it("maps rlimits, treating null as unlimited and clamping to the host with a warning", () => {
    const yaml =
      BASE +
      "rlimits:\n  nofile:\n    soft: 1024\n    hard: 4096\n  nproc:\n    soft: 100\n  core:\n    hard: 10\n";
    const { spec, warnings } = buildOciSpec(
      inputFor(yaml, { hostRlimitHard: { nofile: 2048n, nproc: 500n } }),
    );
    assert.deepEqual(spec.process.rlimits, [
      { type: "RLIMIT_NOFILE", hard: 2048n, soft: 1024n },
      { type: "RLIMIT_NPROC", hard: 500n, soft: 100n },
      { type: "RLIMIT_CORE", hard: 10n, soft: 10n },
    ]);
    assert.equal(warnings.length, 2);
    assert.match(warnings[0]!, /rlimits.nofile: hard limit 4096 clamped to the host's 2048/);
    assert.match(warnings[1]!, /rlimits.nproc: hard limit unlimited clamped/);
    const soft = buildOciSpec(
      inputFor(BASE + "rlimits:\n  nofile:\n    soft: 4000\n", { hostRlimitHard: { nofile: 1000n } }),
    );
    assert.deepEqual(soft.spec.process.rlimits[0], { type: "RLIMIT_NOFILE", hard: 1000n, soft: 1000n });
    assert.match(soft.warnings.join("\n"), /soft limit 4000 clamped to 1000/);
    const unlimited = buildOciSpec(inputFor(BASE + "rlimits:\n  stack: {}\n")).spec.process.rlimits[0];
    assert.deepEqual(unlimited, { type: "RLIMIT_STACK", hard: RLIM_INFINITY, soft: RLIM_INFINITY });
  });

  void it("passes the scheduling policy to skiff-init (runc 1.1.5 ignores process.scheduler)", () => {
    const cases: [string, string][] = [
      ["!fifo { priority: 10 }", "fifo:10"],
      ["!other { nice: 5 }", "other:5"],
      ["!batch { nice: -3 }", "batch:-3"],
      ["!round_robin { priority: 20 }", "rr:20"],
      ["idle", "idle"],
      ["deadline", "deadline"],
    ];
    for (const [policy, option] of cases) {
      const { spec } = buildOciSpec(inputFor(BASE + `sched:\n  policy: ${policy}\n`));
      assert.deepEqual(spec.process.args, [
        "/dev/.skiff/init",
        ...UNMOUNT,
        "--sched",
        option,
        "--",
        "/binary",
      ]);
      assert.equal(spec.process.scheduler, undefined);
    }
  });

  void it("asks skiff-init for SO_PASSCRED on the fds of passcred sockets", () => {
    const yaml =
      BASE +
      "sockets:\n  zed:\n    type: stream\n    mode: 0o600\n    passcred: true\n" +
      "  alpha:\n    type: stream\n    mode: 0o600\n    passcred: false\n";
    const { spec } = buildOciSpec(inputFor(yaml));
    assert.deepEqual(spec.process.args, ["/dev/.skiff/init", ...UNMOUNT, "--passcred", "5", "--", "/binary"]);
  });

  void it("maps the exec SELinux label; the mount context is the image mount's, not runc's", () => {
    const { spec } = buildOciSpec(inputFor(BASE + "selinux:\n  mount_context: a:b:c\n  exec: x:y:z\n"));
    assert.equal(spec.linux.mountLabel, undefined);
    assert.equal(spec.process.selinuxLabel, "x:y:z");
  });
});

void describe("buildOciSpec: namespaces, hostname, console", () => {
  void it("unshares pid, ipc, uts, mount and a new network namespace by default", () => {
    const { spec } = buildOciSpec(inputFor(BASE, { hostname: "hello" }));
    assert.deepEqual(
      spec.linux.namespaces.map((ns) => ns.type),
      ["pid", "ipc", "uts", "mount", "network"],
    );
    assert.equal(spec.linux.namespaces.find((ns) => ns.type === "network")!.path, undefined);
    assert.equal(spec.hostname, "hello");
    assert.equal(spec.linux.cgroupsPath, "/skiff/hello");
  });

  void it("joins the host network or a named namespace", () => {
    const host = buildOciSpec(inputFor(BASE + "network: host\n")).spec.linux.namespaces;
    assert.equal(
      host.some((ns) => ns.type === "network"),
      false,
    );
    const named = buildOciSpec(inputFor(BASE + "network: !namespace container\n")).spec.linux.namespaces;
    assert.deepEqual(named.at(-1), { type: "network", path: "/run/netns/container" });
    const given = buildOciSpec(inputFor(BASE, { network: { kind: "path", path: "/var/run/netns/x" } })).spec
      .linux.namespaces;
    assert.deepEqual(given.at(-1), { type: "network", path: "/var/run/netns/x" });
  });

  void it("binds the console socket and names its path in SKIFF_CONSOLE (skiff-init sets NORTHSTAR_CONSOLE)", () => {
    const { spec } = buildOciSpec(inputFor(BASE, { consoleSocketHostPath: "/run/skiff/console/hello.sock" }));
    const env = envOf(spec.process.env);
    assert.equal(env.NORTHSTAR_CONSOLE, undefined);
    assert.equal(env.SKIFF_CONSOLE, "/dev/.skiff/console");
    assert.deepEqual(mountAt(spec.mounts, "/dev/.skiff/console"), {
      destination: "/dev/.skiff/console",
      type: "bind",
      source: "/run/skiff/console/hello.sock",
      options: ["bind", "nosuid", "nodev", "noexec"],
    });
    assert.equal(envOf(buildOciSpec(inputFor(BASE)).spec.process.env).NORTHSTAR_CONSOLE, undefined);
  });

  void it("leaves the hostname unset unless given", () => {
    assert.equal("hostname" in buildOciSpec(inputFor(BASE)).spec, false);
  });

  void it("keeps runtime variables even when the manifest env names them", () => {
    const yaml = BASE + "env:\n  NORTHSTAR_SOCKET_foo: x\nsockets:\n  foo:\n    type: stream\n    mode: 0\n";
    const { spec, warnings } = buildOciSpec(inputFor(yaml));
    assert.equal(envOf(spec.process.env).NORTHSTAR_SOCKET_foo, "4");
    assert.match(warnings.join("\n"), /env: NORTHSTAR_SOCKET_foo is set by the runtime/);
  });

  void it("rejects a relative cgroups path", () => {
    assert.throws(() => buildOciSpec(inputFor(BASE, { cgroupsPath: "skiff/hello" })), /absolute/);
  });

  void it("masks and write-protects /proc and /sys paths like runc", () => {
    const { linux } = buildOciSpec(inputFor(BASE)).spec;
    assert.ok(linux.maskedPaths.includes("/proc/kcore") && linux.maskedPaths.includes("/sys/firmware"));
    assert.ok(
      linux.readonlyPaths.includes("/proc/sys") && linux.readonlyPaths.includes("/proc/sysrq-trigger"),
    );
  });
});

void describe("serializeOciSpec", () => {
  void it("writes 64-bit values exactly", () => {
    const { spec } = buildOciSpec(inputFor(BASE + "rlimits:\n  nofile: {}\n"));
    const text = serializeOciSpec(spec);
    assert.match(text, /"hard": 18446744073709551615/);
    assert.equal(text.includes("bigint"), false);
    const parsed = JSON.parse(text) as { process: { args: string[] } };
    assert.deepEqual(parsed.process.args, spec.process.args);
  });
});
