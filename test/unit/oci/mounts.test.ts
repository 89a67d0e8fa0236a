import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { buildOciSpec, type OciMount } from "../../../src/daemon/oci/spec.js";
import { BASE, inputFor } from "./fixtures.js";

const mountsOf = (yaml: string, extra = {}) => buildOciSpec(inputFor(BASE + "mounts:\n" + yaml, extra));
const at = (mounts: OciMount[], destination: string) => mounts.filter((m) => m.destination === destination);

void describe("buildOciSpec: mounts", () => {
  void it("always provides a minimal /dev with Skiff's init bound read-only inside it", () => {
    const { spec } = buildOciSpec(inputFor(BASE));
    const destinations = spec.mounts.map((m) => m.destination);
    assert.deepEqual(destinations, ["/dev", "/proc", "/dev/pts", "/dev/shm", "/dev/.skiff/init"]);
    assert.equal(spec.mounts[0]!.type, "tmpfs");
    assert.deepEqual(at(spec.mounts, "/dev/.skiff/init")[0], {
      destination: "/dev/.skiff/init",
      type: "bind",
      source: "/usr/lib/skiff/skiff-init",
      options: ["bind", "ro", "nosuid", "nodev"],
    });
    assert.deepEqual(
      spec.linux.devices.map((d) => d.path),
      ["/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty"],
    );
    assert.equal(spec.linux.devices[0]!.fileMode, 0o666);
  });

  void it("always mounts /proc read-only, which runc needs", () => {
    const { spec } = buildOciSpec(inputFor(BASE));
    assert.deepEqual(at(spec.mounts, "/proc"), [
      { destination: "/proc", type: "proc", source: "proc", options: ["ro", "nosuid", "nodev", "noexec"] },
    ]);
    assert.equal(at(mountsOf("  /proc:\n    type: proc\n").spec.mounts, "/proc").length, 1);
  });

  void it("treats a manifest dev mount at /dev as the minimal /dev", () => {
    const { spec } = mountsOf("  /dev:\n    type: dev\n");
    assert.equal(at(spec.mounts, "/dev").length, 1);
  });

  void it("binds host paths read-only unless rw, with the flags the manifest names", () => {
    const { spec } = mountsOf(
      "  /lib:\n    type: bind\n    host: /lib\n  /etc:\n    type: bind\n    host: /etc\n    options: rw,nosuid,nodev,noexec\n" +
        "  /opt:\n    type: bind\n    host: /opt\n    options: rec\n",
    );
    assert.deepEqual(at(spec.mounts, "/lib")[0], {
      destination: "/lib",
      type: "bind",
      source: "/lib",
      options: ["bind", "ro"],
    });
    assert.deepEqual(at(spec.mounts, "/etc")[0]!.options, ["bind", "rw", "nosuid", "nodev", "noexec"]);
    assert.deepEqual(at(spec.mounts, "/opt")[0]!.options, ["rbind", "ro"]);
  });

  void it("skips bind mounts whose source is missing, with a warning", () => {
    const { spec, warnings } = mountsOf("  /system:\n    type: bind\n    host: /system\n", {
      missingBindSources: new Set(["/system"]),
    });
    assert.equal(at(spec.mounts, "/system").length, 0);
    assert.match(warnings.join("\n"), /\/system does not exist/);
  });

  void it("maps persist, tmpfs, proc and sysfs", () => {
    const { spec } = mountsOf(
      "  /data:\n    type: persist\n  /tmp:\n    type: tmpfs\n    size: 10MB\n  /proc:\n    type: proc\n  /sys:\n    type: sysfs\n",
    );
    assert.deepEqual(at(spec.mounts, "/data")[0], {
      destination: "/data",
      type: "bind",
      source: "/data/skiff/hello",
      options: ["bind", "rw", "nosuid", "nodev", "noexec"],
    });
    assert.deepEqual(at(spec.mounts, "/tmp")[0], {
      destination: "/tmp",
      type: "tmpfs",
      source: "tmpfs",
      options: ["nosuid", "nodev", "noexec", "size=10000000", "mode=1777", "uid=1000", "gid=1001"],
    });
    assert.deepEqual(at(spec.mounts, "/proc")[0], {
      destination: "/proc",
      type: "proc",
      source: "proc",
      options: ["ro", "nosuid", "nodev", "noexec"],
    });
    assert.deepEqual(at(spec.mounts, "/sys")[0]!.options, ["ro", "nosuid", "nodev", "noexec"]);
    assert.equal(at(spec.mounts, "/sys")[0]!.type, "sysfs");
  });

  void it("binds resource directories read-only from the resource root", () => {
    const yaml =
      "  /bin:\n    type: resource\n    name: ferris\n    version: '>=0.0.1'\n    dir: /\n    options: nodev,nosuid\n" +
      "  /message:\n    type: resource\n    name: message\n    version: '>=0.0.1'\n    dir: /share/msg\n    options: rw,noexec\n";
    const roots = {
      ferris: "/run/skiff/containers/ferris:0.0.1",
      message: "/run/skiff/containers/message:0.0.2/",
    };
    const { spec } = mountsOf(yaml, { resourceRoots: roots });
    assert.deepEqual(at(spec.mounts, "/bin")[0], {
      destination: "/bin",
      type: "bind",
      source: "/run/skiff/containers/ferris:0.0.1",
      options: ["bind", "ro", "nosuid", "nodev"],
    });
    assert.deepEqual(at(spec.mounts, "/message")[0], {
      destination: "/message",
      type: "bind",
      source: "/run/skiff/containers/message:0.0.2/share/msg",
      options: ["bind", "ro", "noexec"],
    });
    assert.throws(
      () => mountsOf(yaml, { resourceRoots: { ferris: "/x" } }),
      /resource container message is not mounted/,
    );
  });

  void it("binds the socket directory for a sockets mount", () => {
    const { spec } = mountsOf("  /run/sockets:\n    type: sockets\n", {
      socketDir: "/run/skiff/sockets/hello",
    });
    assert.equal(at(spec.mounts, "/run/sockets")[0]!.source, "/run/skiff/sockets/hello");
    assert.throws(() => mountsOf("  /run/sockets:\n    type: sockets\n"), /socket directory/);
  });

  void it("builds a minimal dev tree elsewhere from the host device nodes", () => {
    const { spec } = mountsOf("  /mydev:\n    type: dev\n");
    assert.equal(at(spec.mounts, "/mydev")[0]!.type, "tmpfs");
    assert.deepEqual(at(spec.mounts, "/mydev/null")[0], {
      destination: "/mydev/null",
      type: "bind",
      source: "/dev/null",
      options: ["bind", "rw", "nosuid", "noexec"],
    });
  });

  void it("orders mounts so that parents come first", () => {
    const { spec } = mountsOf(
      "  /data/cache/x:\n    type: tmpfs\n    size: 1\n  /data:\n    type: persist\n  /data/cache:\n    type: tmpfs\n    size: 1\n",
    );
    const order = spec.mounts.map((m) => m.destination).filter((d) => d.startsWith("/data"));
    assert.deepEqual(order, ["/data", "/data/cache", "/data/cache/x"]);
    const dev = spec.mounts.findIndex((m) => m.destination === "/dev");
    const init = spec.mounts.findIndex((m) => m.destination === "/dev/.skiff/init");
    assert.ok(dev < init);
  });
});
