import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { EventLoop, EventLoopClosedError } from "../../../src/daemon/events/loop.js";

type E = { kind: "a" | "b" | "c"; n: number };

describe("EventLoop", () => {
  it("delivers exactly the registered kinds, in order", async () => {
    const loop = new EventLoop<E>({ capacity: 16 });
    const seenA: string[] = [];
    const seenAB: string[] = [];
    loop.subscribe("a", ["a"], (e) => void seenA.push(`${e.kind}${e.n}`));
    loop.subscribe("ab", ["a", "b"], (e) => void seenAB.push(`${e.kind}${e.n}`));
    const running = loop.run();
    for (const [kind, n] of [
      ["a", 1],
      ["b", 2],
      ["c", 3],
      ["a", 4],
    ] as const)
      await loop.enqueue({ kind, n });
    loop.close();
    await running;
    assert.deepEqual(seenA, ["a1", "a4"]);
    assert.deepEqual(seenAB, ["a1", "b2", "a4"]);
    assert.equal(loop.eventsProcessed, 4);
  });

  it("serializes async handlers: the next event waits for the previous handler", async () => {
    const loop = new EventLoop<E>({ capacity: 16 });
    const log: string[] = [];
    loop.subscribe("slow", ["a"], async (e) => {
      log.push(`start${e.n}`);
      await new Promise((r) => setTimeout(r, 5));
      log.push(`end${e.n}`);
    });
    const running = loop.run();
    await loop.enqueue({ kind: "a", n: 1 });
    await loop.enqueue({ kind: "a", n: 2 });
    loop.close();
    await running;
    assert.deepEqual(log, ["start1", "end1", "start2", "end2"]);
  });

  it("a subscriber removed mid-dispatch gets none of its pending deliveries", async () => {
    const loop = new EventLoop<E>({ capacity: 16 });
    const seen: number[] = [];
    // "remover" is delivered first and removes "second" while event 1 is being dispatched.
    loop.subscribe("remover", ["a"], (e) => {
      if (e.n === 1) second.remove();
    });
    const second = loop.subscribe("second", ["a"], (e) => void seen.push(e.n));
    await loop.enqueue({ kind: "a", n: 1 });
    await loop.enqueue({ kind: "a", n: 2 });
    const running = loop.run();
    loop.close();
    await running;
    assert.deepEqual(seen, []);
  });

  it("a subscriber added while running sees later events", async () => {
    const loop = new EventLoop<E>({ capacity: 16 });
    const seen: number[] = [];
    loop.subscribe("adder", ["a"], (e) => {
      if (e.n === 1) loop.subscribe("late", ["b"], (x) => void seen.push(x.n));
    });
    const running = loop.run();
    await loop.enqueue({ kind: "b", n: 0 });
    await loop.enqueue({ kind: "a", n: 1 });
    await loop.enqueue({ kind: "b", n: 2 });
    loop.close();
    await running;
    assert.deepEqual(seen, [2]);
  });

  it("applies back-pressure when full and loses no event", async () => {
    const loop = new EventLoop<E>({ capacity: 2 });
    const seen: number[] = [];
    loop.subscribe("all", ["a"], (e) => void seen.push(e.n));
    let resolvedThird = false;
    await loop.enqueue({ kind: "a", n: 1 });
    await loop.enqueue({ kind: "a", n: 2 });
    const third = loop.enqueue({ kind: "a", n: 3 }).then(() => (resolvedThird = true));
    await new Promise((r) => setImmediate(r));
    assert.equal(resolvedThird, false, "enqueue must wait while the queue is full");
    assert.equal(loop.length, 2);
    const running = loop.run();
    await third;
    const rest = Array.from({ length: 50 }, (_, i) => loop.enqueue({ kind: "a", n: 4 + i }));
    await Promise.all(rest);
    loop.close();
    await running;
    assert.deepEqual(
      seen,
      Array.from({ length: 53 }, (_, i) => i + 1),
    );
  });

  it("a throwing handler is reported and the loop goes on", async () => {
    const errors: string[] = [];
    const loop = new EventLoop<E>({ capacity: 4, onHandlerError: (s) => void errors.push(s) });
    const seen: number[] = [];
    loop.subscribe("bad", ["a"], () => {
      throw new Error("boom");
    });
    loop.subscribe("good", ["a"], (e) => void seen.push(e.n));
    const running = loop.run();
    await loop.enqueue({ kind: "a", n: 1 });
    loop.close();
    await running;
    assert.deepEqual(errors, ["bad"]);
    assert.deepEqual(seen, [1]);
  });

  it("rejects enqueue after close, including producers waiting for room", async () => {
    const loop = new EventLoop<E>({ capacity: 1 });
    await loop.enqueue({ kind: "a", n: 1 });
    const waiting = loop.enqueue({ kind: "a", n: 2 });
    loop.close();
    await assert.rejects(waiting, EventLoopClosedError);
    await assert.rejects(loop.enqueue({ kind: "a", n: 3 }), EventLoopClosedError);
  });

  it("stamps each event with the clock at enqueue time, not at delivery", async () => {
    let clock = 100;
    const loop = new EventLoop<E>({ capacity: 16, clock: () => clock });
    const seen: [number, number][] = [];
    loop.subscribe("a", ["a"], (e, at) => void seen.push([e.n, at]));
    await loop.enqueue({ kind: "a", n: 1 });
    clock = 200;
    await loop.enqueue({ kind: "a", n: 2 });
    clock = 300;
    const running = loop.run();
    loop.close();
    await running;
    assert.deepEqual(seen, [
      [1, 100],
      [2, 200],
    ]);
  });
});
