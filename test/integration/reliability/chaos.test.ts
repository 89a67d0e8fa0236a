/**
 * Chaos: a real skiffd, a monkey of starts, stops and kills over a few containers (short ones
 * that exit by themselves, ones that crash, long-running ones), and five kill -9 of skiffd, each
 * followed by a restart and a subscriber that reconnects. At the end every instance's exit was
 * reported, a repeat only after a crash and with the same instance id (which the client
 * library drops by itself), and nothing is left behind.
 *
 * The monkey is random; the seed is in every failure message (CHAOS_SEED=<n> replays the
 * choices; the timing of the machine still varies).
 */
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { after, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { connect, type Client } from "../../../src/client/index.js";
import type { Notification } from "../../../src/protocol/messages.js";
import { ContainerHarness } from "../../helpers/containers.js";
import { Skiffd, waitUntil, type Received } from "./skiffd.js";

/** mulberry32: a small seeded generator, so a failing run can be replayed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Event =
  | { generation: number; kind: "started" }
  | { generation: number; kind: "exit"; instance?: string };

/**
 * Checks one container's notifications in order (repeats already dropped by the client): each
 * `started` is followed by exactly one `exit` before the next `started`. Only across a daemon
 * crash may an `exit` come without its `started`: the daemon died after the start and before the
 * notification.
 */
function checkContainer(container: string, events: Event[]): string[] {
  const problems: string[] = [];
  let open: Event | undefined;
  let last: Event | undefined;
  for (const e of events) {
    if (e.kind === "started") {
      if (open)
        problems.push(
          `${container}: started twice without an exit between (generations ${open.generation}, ${e.generation})`,
        );
      open = e;
    } else {
      if (!e.instance) problems.push(`${container}: an exit without an instance id`);
      // A swallowed start needs a crash after the container's previous event.
      if (!open && (e.generation === 1 || last?.generation === e.generation))
        problems.push(`${container}: an exit without a start in generation ${e.generation}`);
      open = undefined;
    }
    last = e;
  }
  if (open) problems.push(`${container}: started (generation ${open.generation}) and never reported an exit`);
  return problems;
}

describe("chaos: kill -9 of skiffd among starts, stops and exits", () => {
  let h: ContainerHarness | undefined;
  let daemon: Skiffd | undefined;
  after(async () => {
    if (process.env.CHAOS_LOG) await writeFile(process.env.CHAOS_LOG, daemon?.log ?? "");
    await daemon?.forceCleanup().catch(() => undefined);
    await h?.close();
  });

  it("every exit is reported, repeats only after a crash and with the same instance id; nothing leaks", async (t) => {
    const seed = Number(process.env.CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 31));
    const rand = random(seed);
    const pick = <T>(items: T[]): T => items[Math.floor(rand() * items.length)]!;
    const context = (): string => `(CHAOS_SEED=${seed})\n${daemon?.log.slice(-4000) ?? ""}`;

    h = await ContainerHarness.create();
    const hello = await h.add(h.name("hello"), "/bin/sh", ["-c", "echo hello"]);
    const crashing = await h.add(h.name("crashing"), "/bin/sh", ["-c", "echo crashing now >&2; exit 3"]);
    const short = await h.add(h.name("short"), "/bin/sh", ["-c", "sleep 0.3; exit 7"]);
    const svc = await h.add(h.name("svc"), "/bin/sleep", ["1000"]);
    const svc2 = await h.add(h.name("svc2"), "/bin/sh", ["-c", "trap 'exit 0' TERM; sleep 1000 & wait"]);
    const all = [hello, crashing, short, svc, svc2];
    daemon = new Skiffd(h);
    await daemon.writeConfig();
    await daemon.start();

    let requests = 0;
    const monkey = async (client: Client, until: () => boolean): Promise<void> => {
      while (!until()) {
        const action = rand();
        const container = pick(all);
        requests++;
        try {
          if (action < 0.55) await client.start(container);
          else if (action < 0.8) await client.stop(container, 1);
          else await client.kill(container, 9);
        } catch {
          // Refused (already running, not started) or cut off by the kill -9: both are the point.
        }
        await sleep(10 + rand() * 40);
      }
    };
    // Records every monitor's pid while they come and go, to check none survives at the end.
    let scanning = true;
    const scanner = (async () => {
      while (scanning) {
        await daemon.scanMonitors();
        await sleep(200);
      }
    })();

    for (let round = 0; round < 5; round++) {
      // Two monkeys: one's stop (up to its 1 s grace) does not hold up the other's requests.
      const clients = [await connect(h.url, { timeout: 5000 }), await connect(h.url, { timeout: 5000 })];
      let crashed = false;
      const running = Promise.all(clients.map((c) => monkey(c, () => crashed)));
      await sleep(1000 + rand() * 1500);
      await daemon.scanMonitors();
      await daemon.kill9();
      crashed = true;
      await running;
      for (const c of clients) c.close();
      // Down for a while: short containers end meanwhile; sometimes the restart is immediate.
      if (rand() < 0.7) await sleep(rand() * 600);
      await daemon.start();
    }

    scanning = false;
    await scanner;
    // Wind down: stop whatever still runs, then wait until every container's story is complete.
    const client = await connect(h.url, { timeout: 20_000 });
    for (const id of all) await client.stop(id, 1).catch(() => undefined);
    const byContainer = (): Map<string, Event[]> => {
      const map = new Map<string, Event[]>(all.map((id) => [id, []]));
      for (const { generation, notification: n } of daemon!.received) {
        if (n.type === "started") map.get(n.container)?.push({ generation, kind: "started" });
        if (n.type === "exit") map.get(n.container)?.push({ generation, kind: "exit", instance: n.instance });
      }
      return map;
    };
    await waitUntil(
      "every started container to report its exit",
      () => [...byContainer().values()].every((events) => events.at(-1)?.kind !== "started"),
      30_000,
    ).catch((e: Error) => assert.fail(`${e.message}: ${JSON.stringify(daemon!.received)} ${context()}`));
    for (const id of all)
      assert.equal((await client.inspect(id)).process, null, `${id} still runs ${context()}`);
    client.close();

    const problems = [...byContainer()].flatMap(([id, events]) => checkContainer(id, events));
    assert.deepEqual(problems, [], `${JSON.stringify(daemon.received)} ${context()}`);

    // Repeats: the client library dropped them; each names an instance reported before, by an
    // earlier daemon (a crash during the delivery), never twice by one daemon.
    const exits = daemon.received.filter(
      (r): r is Received & { notification: Extract<Notification, { type: "exit" }> } =>
        r.notification.type === "exit",
    );
    const ids = exits.map((r) => r.notification.instance);
    assert.equal(new Set(ids).size, ids.length, `the client delivered an instance twice ${context()}`);
    for (const instance of daemon.seenExits.dropped) {
      assert.ok(ids.includes(instance), `repeat of an unknown instance ${instance} ${context()}`);
    }
    const started = exits.length + daemon.seenExits.dropped.length;
    const found = (
      daemon.log.match(/found the exit of a container that ended while the daemon was down/g) ?? []
    ).length;
    t.diagnostic(
      `seed ${seed}: ${requests} requests, ${exits.length} exits, ${daemon.seenExits.dropped.length} repeats dropped, ${found} found after a crash`,
    );
    assert.ok(started > 10, `the monkey did too little: ${started} exits, ${requests} requests ${context()}`);

    assert.equal(await daemon.stop(), 0, context());
    const left = await daemon.leftovers();
    assert.deepEqual(left, { mounts: [], loops: [], cgroups: [], monitors: [], files: [] }, context());
  });
});
