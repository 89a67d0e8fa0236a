import assert from "node:assert/strict";
import { copyFile, readdir, readFile } from "node:fs/promises";
import { after, before, describe, it } from "node:test";
import { ContainerHarness } from "../../helpers/containers.js";
import { TestPackages } from "../../helpers/npk.js";
import { waitFor } from "../../helpers/wait.js";

/** Loop devices whose backing file is under `dir`. */
async function loopsUnder(dir: string): Promise<string[]> {
  const devices = (await readdir("/sys/block")).filter((d) => d.startsWith("loop"));
  const found: string[] = [];
  for (const d of devices) {
    const backing = await readFile(`/sys/block/${d}/loop/backing_file`, "utf8").catch(() => "");
    if (backing.startsWith(`${dir}/`)) found.push(backing.trim());
  }
  return found.sort();
}

/** Mount points under `dir` in this mount namespace. */
async function mountsUnder(dir: string): Promise<string[]> {
  const info = await readFile("/proc/self/mountinfo", "utf8");
  return info
    .split("\n")
    .map((l) => l.split(" ")[4] ?? "")
    .filter((p) => p.startsWith(`${dir}/`))
    .sort();
}

describe("mount cache (mount_cache_size = 1): images a start mounted are released once unused", () => {
  let h: ContainerHarness;
  const names: string[] = [];
  let kept: string;
  let images: string;
  let repo: string;
  before(async () => {
    h = await ContainerHarness.create();
    for (const n of ["a", "b", "c"]) names.push(await h.add(h.name(n), "/bin/true", []));
    kept = await h.add(h.name("kept"), "/bin/true", []);
    await h.startDaemon("mount_cache_size = 1\n");
    images = `${h.dir}/state/run/images`;
    repo = `${h.dir}/repo`;
  });
  after(async () => {
    await h.close();
  });

  const imageOf = (id: string): string => `${images}/${id.replace(":", "-")}`;
  const fileOf = (id: string): string => `${repo}/${id.replace(":", "-")}.npk`;

  async function run(id: string): Promise<void> {
    const from = h.notifications.length;
    await h.client.start(id);
    const status = await h.waitForExit(id, from);
    assert.ok(status.type === "exit" && status.code === 0, JSON.stringify(status));
  }

  it("keeps only the most recently used image mounted, with its loop device; an explicit mount stays", async () => {
    assert.deepEqual(await h.client.mount([kept]), [{ type: "ok", container: kept }]);
    await run(kept);
    for (const id of names) await run(id);
    const last = names[names.length - 1]!;
    const expected = [imageOf(kept), imageOf(last)].sort();
    await waitFor(async () => JSON.stringify(await mountsUnder(images)) === JSON.stringify(expected), {
      timeoutMs: 20_000,
      what: "only the kept image and the last one to stay mounted",
      detail: async () => JSON.stringify(await mountsUnder(images)),
    });
    await waitFor(
      async () =>
        JSON.stringify(await loopsUnder(repo)) === JSON.stringify([fileOf(kept), fileOf(last)].sort()),
      {
        timeoutMs: 20_000,
        what: "the released images' loop devices to be detached",
        detail: async () => JSON.stringify(await loopsUnder(repo)),
      },
    );
    for (const id of names.slice(0, -1)) assert.equal((await h.client.inspect(id)).mounted, false, id);
    assert.equal((await h.client.inspect(last)).mounted, true);
    assert.equal((await h.client.inspect(kept)).mounted, true, "a mount request's image is kept");
  });

  it("a container started again right after it exited (cached or being released) starts", async () => {
    const [a, b] = names as [string, string];
    // b's exit makes a's image (the older) go; a starts again at once, while it may be released.
    await run(a);
    await run(b);
    await run(a);
    // The cached image: no mount needed.
    await run(a);
    await waitFor(async () => (await mountsUnder(images)).includes(imageOf(a)), {
      timeoutMs: 20_000,
      what: "a's image to stay mounted as the most recently used",
    });
    await waitFor(async () => !(await mountsUnder(images)).includes(imageOf(b)), {
      timeoutMs: 20_000,
      what: "b's image to be released",
    });
  });

  it("an explicit umount of a cached image, and a mount of a released one, answer ok", async () => {
    const [a, b] = names as [string, string];
    assert.deepEqual(await h.client.umount([a]), [{ type: "ok", container: a }]);
    assert.deepEqual(await h.client.mount([b]), [{ type: "ok", container: b }]);
    await run(b);
    await run(a);
    // b was mounted by a request: a's exit does not release it.
    assert.equal((await h.client.inspect(b)).mounted, true);
    assert.equal((await h.client.inspect(kept)).mounted, true);
  });
});

describe("mount cache (mount_cache_size = 0): a resource stays while any instance uses it", () => {
  let h: ContainerHarness;
  let packages: TestPackages;
  let res: string;
  let holder: string;
  let user: string;
  before(async () => {
    h = await ContainerHarness.create();
    packages = await TestPackages.create();
    const built = await packages.build(h.name("res"), "1.0.0", { signed: false });
    await copyFile(built.path, `${h.dir}/repo/${h.name("res")}-1.0.0.npk`);
    res = built.id;
    const mounts = `  /res:\n    type: resource\n    name: ${h.name("res")}\n    version: ">=1.0.0"\n    dir: /\n`;
    holder = await h.add(h.name("holder"), "/bin/sleep", ["1000"], "", mounts);
    user = await h.add(h.name("user"), "/bin/ls", ["/res"], "", mounts);
    await h.startDaemon("mount_cache_size = 0\n");
  });
  after(async () => {
    await h.close();
    await packages.remove();
  });

  const mounted = async (id: string): Promise<boolean> => (await h.client.inspect(id)).mounted;

  it("releases an ended instance's image at once, and the resource once its last user ended", async () => {
    await h.client.start(holder);
    const from = h.notifications.length;
    await h.client.start(user);
    await h.waitForExit(user, from);
    await waitFor(async () => !(await mounted(user)), { timeoutMs: 20_000, what: "user's image released" });
    assert.equal(await mounted(res), true, "the running holder still uses the resource");
    assert.equal(await mounted(holder), true);
    await h.client.stop(holder);
    await waitFor(async () => !(await mounted(res)) && !(await mounted(holder)), {
      timeoutMs: 20_000,
      what: "the resource and the holder's image released",
    });
    await waitFor(async () => (await loopsUnder(`${h.dir}/repo`)).length === 0, {
      timeoutMs: 20_000,
      what: "every loop device over the repository detached",
      detail: async () => JSON.stringify(await loopsUnder(`${h.dir}/repo`)),
    });
    // And a start mounts both again.
    const again = h.notifications.length;
    await h.client.start(user);
    const status = await h.waitForExit(user, again);
    assert.ok(status.type === "exit" && status.code === 0, JSON.stringify(status));
  });
});
