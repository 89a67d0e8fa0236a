import { test } from "node:test";
import assert from "node:assert/strict";
import { parseStressArgs, StressUsageError } from "../../../bench/stress-args.js";
import { findInstanceId } from "../../../bench/stress-clients.js";
import {
  Counts,
  ExitLedger,
  fmtDuration,
  LatencyRecorder,
  percentile,
  Rng,
  summarize,
  thin,
} from "../../../bench/stress-stats.js";

const seed = (): number => 42;

void test("parseStressArgs: mode and duration, defaults for the rest", () => {
  assert.deepEqual(parseStressArgs(["--mode", "monkey", "--duration", "20s"], seed), {
    mode: "monkey",
    durationMs: 20_000,
    containers: 4,
    killDaemonEveryMs: undefined,
    reportEveryMs: 10_000,
    seed: 42,
  });
});

void test("parseStressArgs: every option, bare seconds, compound durations", () => {
  const o = parseStressArgs(
    [
      "--mode=start-stop",
      "--duration",
      "1m30s",
      "--containers",
      "16",
      "--kill-daemon-every",
      "5",
      "--report-every",
      "2s",
      "--seed",
      "7",
    ],
    seed,
  );
  assert.equal(o.mode, "start-stop");
  assert.equal(o.durationMs, 90_000);
  assert.equal(o.containers, 16);
  assert.equal(o.killDaemonEveryMs, 5000);
  assert.equal(o.reportEveryMs, 2000);
  assert.equal(o.seed, 7);
});

void test("parseStressArgs: refuses what it cannot run, naming the argument", () => {
  const refused = (argv: string[], pattern: RegExp): void =>
    assert.throws(
      () => parseStressArgs(argv, seed),
      (e: unknown) => e instanceof StressUsageError && pattern.test(e.message),
    );
  refused(["--duration", "20s"], /--mode is required/);
  refused(["--mode", "monkey"], /--duration is required/);
  refused(["--mode", "chaos", "--duration", "20s"], /--mode: "chaos" is not one of/);
  refused(["--mode", "monkey", "--duration", "20x"], /--duration: invalid duration/);
  refused(["--mode", "monkey", "--duration", "500ms"], /--duration: 500ms is out of range/);
  refused(["--mode", "monkey", "--duration", "25h"], /--duration: 25h is out of range/);
  refused(
    ["--mode", "monkey", "--duration", "20s", "--containers", "0"],
    /--containers: expected an integer/,
  );
  refused(["--mode", "monkey", "--duration", "20s", "--containers", "65"], /--containers/);
  refused(["--mode", "monkey", "--duration", "20s", "--containers", "2.5"], /--containers/);
  refused(["--mode", "monkey", "--duration", "20s", "--kill-daemon-every", "100ms"], /--kill-daemon-every/);
  refused(["--mode", "monkey", "--duration", "20s", "--seed", "-1"], /--seed/);
  refused(["--mode", "monkey", "--duration", "20s", "--verbose"], /Unknown option '--verbose'/);
  refused(["--mode", "monkey", "--duration", "20s", "extra"], /positional/);
});

void test("percentile and summarize: nearest rank on unsorted samples; NaN for none", () => {
  const samples = [5, 1, 4, 2, 3, 10, 9, 8, 7, 6];
  assert.equal(percentile(samples, 50), 5);
  assert.equal(percentile(samples, 99), 10);
  assert.equal(percentile(samples, 0), 1);
  assert.equal(percentile([3], 99), 3);
  assert.ok(Number.isNaN(percentile([], 50)));
  assert.deepEqual(summarize(samples), { count: 10, p50: 5, p99: 10, max: 10 });
  const none = summarize([]);
  assert.equal(none.count, 0);
  assert.ok(Number.isNaN(none.max) && Number.isNaN(none.p50));
  assert.deepEqual(samples, [5, 1, 4, 2, 3, 10, 9, 8, 7, 6]); // not sorted in place
});

void test("LatencyRecorder: windows start anew; the whole run keeps an exact count and max past its capacity", () => {
  const rng = new Rng(1);
  const r = new LatencyRecorder(100, () => rng.next());
  for (let i = 1; i <= 50; i++) r.record(i);
  assert.deepEqual(r.takeWindow(), { count: 50, p50: 25, p99: 50, max: 50 });
  assert.equal(r.takeWindow().count, 0);
  for (let i = 0; i < 10_000; i++) r.record(1);
  r.record(500);
  const all = r.overall();
  assert.equal(all.count, 10_051);
  assert.equal(all.max, 500);
  assert.equal(all.p50, 1); // the reservoir is a uniform sample: almost all ones
});

void test("Rng: the same seed gives the same choices; ints within bounds; weights respected", () => {
  const a = new Rng(123);
  const b = new Rng(123);
  const seqA = Array.from({ length: 20 }, () => a.next());
  assert.deepEqual(
    seqA,
    Array.from({ length: 20 }, () => b.next()),
  );
  assert.ok(seqA.every((x) => x >= 0 && x < 1));
  const r = new Rng(9);
  for (let i = 0; i < 1000; i++) {
    const n = r.int(3, 5);
    assert.ok(n >= 3 && n <= 5 && Number.isInteger(n));
  }
  const picks = new Counts();
  for (let i = 0; i < 10_000; i++) {
    picks.add(
      r.weighted([
        ["never", 0],
        ["rare", 1],
        ["often", 9],
      ] as const),
    );
  }
  assert.equal(picks.get("never"), 0);
  assert.ok(picks.get("often") > 8 * picks.get("rare"));
  assert.throws(() => r.pick([]), RangeError);
});

void test("Counts: totals, order by count then name, a bounded format", () => {
  const c = new Counts();
  c.add("b");
  c.add("a", 3);
  c.add("c", 3);
  assert.equal(c.total, 7);
  assert.deepEqual(c.entries(), [
    ["a", 3],
    ["c", 3],
    ["b", 1],
  ]);
  assert.equal(c.format(2), "a 3, c 3, +1 more kinds");
  assert.equal(new Counts().format(), "none");
});

void test("ExitLedger: lost and duplicated exits against the instances that ran", () => {
  const l = new ExitLedger();
  // a ran 3 instances and was told 2 exits; b ran 1 and was told 2; c was not a stress container.
  for (const c of ["a", "a", "a", "b", "c"]) l.recordStarted(c);
  l.recordExit("a", undefined);
  l.recordExit("a", undefined);
  l.recordExit("b", undefined);
  l.recordExit("b", undefined, true);
  l.recordExit("c", undefined, true);
  assert.deepEqual(
    l.reconcile(
      new Map([
        ["a", 3],
        ["b", 1],
      ]),
    ),
    {
      instances: 4,
      startedNotifications: 4,
      exitNotifications: 4,
      lost: 1,
      duplicatedByCount: 1,
      duplicatedById: 0,
      exitsWithId: 0,
      errorExits: 1,
    },
  );
});

void test("ExitLedger: duplicates by instance id, also when the counts balance out", () => {
  const l = new ExitLedger();
  l.recordExit("a", "1");
  l.recordExit("a", "1"); // delivered twice (a crash during delivery)
  l.recordExit("b", "1"); // the same id in another container is another instance
  l.recordExit("x", "7");
  l.recordExit("x", "7"); // not a stress container: not counted
  const account = l.reconcile(
    new Map([
      ["a", 2],
      ["b", 1],
    ]),
  );
  assert.equal(account.duplicatedById, 1);
  assert.equal(account.duplicatedByCount, 0);
  assert.equal(account.lost, 0);
  assert.equal(account.exitsWithId, 5);
});

void test("findInstanceId: wherever the notification carries it, or undefined", () => {
  assert.equal(findInstanceId(["a:1.0.0", { exit: { code: 0 }, instance: "i-9" }]), "i-9");
  assert.equal(findInstanceId({ container: "a:1.0.0", instance_id: 12 }), "12");
  assert.equal(findInstanceId(["a:1.0.0", { signalled: { signal: 9 }, reason: "error" }]), undefined);
  assert.equal(findInstanceId("a:1.0.0"), undefined);
  assert.equal(findInstanceId({ instance: null }), undefined);
});

void test("thin and fmtDuration", () => {
  assert.deepEqual(thin([1, 2, 3], 5), [1, 2, 3]);
  assert.deepEqual(thin([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 3), [0, 5, 10]);
  assert.deepEqual(thin([1, 2, 3], 1), [3]);
  assert.deepEqual(thin([], 1), []);
  assert.equal(fmtDuration(12_345), "12s");
  assert.equal(fmtDuration(245_000), "4m05s");
  assert.equal(fmtDuration(3_723_000), "1h02m03s");
});
