// A bounded map that forgets the least recently used entry first (a Map keeps insertion
// order; a hit moves its key to the end). For caches whose keys a client chooses: TLS
// server names, destination addresses.
export class Lru<K, V> {
  private readonly map = new Map<K, V>();
  /** Entries forgotten to stay within the bound. */
  evicted = 0;

  constructor(readonly max: number) {
    if (!(max >= 1)) throw new Error(`an LRU needs room for at least one entry, got ${max}`);
  }

  get(key: K): V | undefined {
    const v = this.map.get(key);
    if (v === undefined) return undefined;
    this.map.delete(key);
    this.map.set(key, v);
    return v;
  }

  set(key: K, value: V): void {
    this.map.delete(key);
    this.map.set(key, value);
    while (this.map.size > this.max) {
      this.map.delete(this.map.keys().next().value as K);
      this.evicted++;
    }
  }

  delete(key: K): boolean {
    return this.map.delete(key);
  }

  get size(): number {
    return this.map.size;
  }

  clear(): void {
    this.map.clear();
  }
}
