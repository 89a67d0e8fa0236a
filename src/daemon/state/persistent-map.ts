/**
 * An immutable map whose update costs O(1) instead of a copy of every entry: the state owner
 * replaces the state on every event, and with 1000 containers a `new Map(containers)` per
 * transition was the largest O(containers) cost of an event (docs/footprint.md, "start path").
 *
 * Shape: a hash trie of fixed depth, 32 × 32 slots, each slot a small array of entries (keys
 * whose hashes share the 10 bits). `set`/`delete` copy the path: the root (32 slots), one node
 * (32 slots) and one bucket; everything else is shared with the previous version. With up to
 * 16384 containers (max_containers) a bucket holds ~16 entries at worst on average.
 *
 * Iteration is in insertion order, like a Map (a `set` of a key present keeps its place): each
 * entry keeps the sequence number of its first insertion, and the first iteration of a version
 * sorts once into a native Map that later iterations of the same version reuse. Iterating is
 * O(n log n) once per version; lookups and updates never iterate.
 */

interface Entry<K, V> {
  readonly key: K;
  readonly value: V;
  /** Insertion order. */
  readonly seq: number;
}

type Bucket<K, V> = readonly Entry<K, V>[];
type Node<K, V> = readonly (Bucket<K, V> | undefined)[];
type Root<K, V> = readonly (Node<K, V> | undefined)[];

const BITS = 5;
const WIDTH = 1 << BITS;
const MASK = WIDTH - 1;

/** FNV-1a over the UTF-16 code units: cheap and spreads names that differ in one digit. */
function hash(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** The materialized Map of a version, built at its first iteration (versions are immutable). */
const ordered = new WeakMap<object, Map<unknown, unknown>>();

export class PersistentMap<K extends string, V> implements ReadonlyMap<K, V> {
  private constructor(
    private readonly root: Root<K, V>,
    readonly size: number,
    private readonly nextSeq: number,
  ) {}

  static empty<K extends string, V>(): PersistentMap<K, V> {
    return new PersistentMap<K, V>([], 0, 0);
  }

  static from<K extends string, V>(entries: Iterable<readonly [K, V]>): PersistentMap<K, V> {
    let map = PersistentMap.empty<K, V>();
    for (const [k, v] of entries) map = map.set(k, v);
    return map;
  }

  private bucketOf(h: number): Bucket<K, V> | undefined {
    return this.root[(h >>> BITS) & MASK]?.[h & MASK];
  }

  get(key: K): V | undefined {
    return this.bucketOf(hash(key))?.find((e) => e.key === key)?.value;
  }

  has(key: K): boolean {
    return this.bucketOf(hash(key))?.some((e) => e.key === key) ?? false;
  }

  /** A new version with `key` set to `value`; this one is unchanged. */
  set(key: K, value: V): PersistentMap<K, V> {
    const h = hash(key);
    const bucket = this.bucketOf(h) ?? [];
    const at = bucket.findIndex((e) => e.key === key);
    const next =
      at < 0
        ? [...bucket, { key, value, seq: this.nextSeq }]
        : bucket.map((e, i) => (i === at ? { key, value, seq: e.seq } : e));
    return new PersistentMap(this.withBucket(h, next), this.size + (at < 0 ? 1 : 0), this.nextSeq + 1);
  }

  /** A new version without `key` (this one if it is absent). */
  delete(key: K): PersistentMap<K, V> {
    const h = hash(key);
    const bucket = this.bucketOf(h);
    if (!bucket?.some((e) => e.key === key)) return this;
    const next = bucket.filter((e) => e.key !== key);
    return new PersistentMap(
      this.withBucket(h, next.length > 0 ? next : undefined),
      this.size - 1,
      this.nextSeq,
    );
  }

  private withBucket(h: number, bucket: Bucket<K, V> | undefined): Root<K, V> {
    const high = (h >>> BITS) & MASK;
    const node = [...(this.root[high] ?? new Array<Bucket<K, V> | undefined>(WIDTH).fill(undefined))];
    node[h & MASK] = bucket;
    const root = [...this.root];
    while (root.length < WIDTH) root.push(undefined);
    root[high] = node;
    return root;
  }

  /** This version as a native Map in insertion order, built once per version. */
  private materialized(): Map<K, V> {
    const cached = ordered.get(this) as Map<K, V> | undefined;
    if (cached) return cached;
    const all: Entry<K, V>[] = [];
    for (const node of this.root) for (const bucket of node ?? []) if (bucket) all.push(...bucket);
    all.sort((a, b) => a.seq - b.seq);
    const map = new Map(all.map((e) => [e.key, e.value] as const));
    ordered.set(this, map);
    return map;
  }

  entries(): MapIterator<[K, V]> {
    return this.materialized().entries();
  }

  keys(): MapIterator<K> {
    return this.materialized().keys();
  }

  values(): MapIterator<V> {
    return this.materialized().values();
  }

  [Symbol.iterator](): MapIterator<[K, V]> {
    return this.entries();
  }

  forEach(callback: (value: V, key: K, map: ReadonlyMap<K, V>) => void, thisArg?: unknown): void {
    for (const [k, v] of this.materialized()) callback.call(thisArg, v, k, this);
  }
}
