// Name index: exact names, names with all their subdomains (".a.b"), subdomains only ("*.a.b").
//
// One Map keyed by name, fronted by a one-hash filter (a bit array, 16 bits per name). A
// lookup hashes the query once, from its last character to its first, which yields the hash
// of every suffix at a label boundary on the way; only suffixes whose bit is set are looked
// up in the Map. So a lookup costs O(length of the name) and, for names that are not in the
// index, touches one compact bit array instead of a large hash table: it stays flat from a
// thousand names to millions, where a Map alone slows down with cache misses.

const EXACT = 0, SUFFIX = 1, WILDCARD = 2;
type Refs = number | number[];

export class NameIndex {
  private readonly map = new Map<string, Refs>();
  private filter = new Int32Array(1);
  private filterMask = 0;
  private dirty = false;
  size = 0;

  /** Adds an entry in name notation for rule `rule`. */
  add(entry: string, rule: number): void {
    let kind = EXACT;
    let name = entry;
    if (entry.startsWith("*.")) { kind = WILDCARD; name = entry.slice(2); }
    else if (entry.startsWith(".")) { kind = SUFFIX; name = entry.slice(1); }
    const ref = rule * 4 + kind;
    const cur = this.map.get(name);
    if (cur === undefined) this.map.set(name, ref);
    else if (typeof cur === "number") { if (cur !== ref) this.map.set(name, [cur, ref]); }
    else if (!cur.includes(ref)) cur.push(ref);
    this.size++;
    this.dirty = true;
  }

  /** Builds the filter; called by the first lookup after additions. */
  private build(): void {
    let bits = 64;
    while (bits < this.map.size * 16) bits *= 2;
    this.filter = new Int32Array(bits >>> 5);
    this.filterMask = bits - 1;
    for (const name of this.map.keys()) {
      const h = hashName(name) & this.filterMask;
      this.filter[h >>> 5]! |= 1 << (h & 31);
    }
    this.dirty = false;
  }

  /** Calls `hit(rule)` for every rule whose entry matches `name` (lower-case, no trailing dot). */
  lookup(name: string, hit: (rule: number) => void): void {
    if (this.map.size === 0 || name.length === 0) return;
    if (this.dirty) this.build();
    const filter = this.filter, mask = this.filterMask;
    let h = SEED;
    for (let i = name.length - 1; i >= 0; i--) {
      h = Math.imul(h ^ name.charCodeAt(i), PRIME);
      if (i === 0 || name.charCodeAt(i - 1) === 46 /* . */) {
        const b = h & mask;
        if ((filter[b >>> 5]! & (1 << (b & 31))) !== 0) emit(this.map.get(i === 0 ? name : name.slice(i)), hit, i === 0);
      }
    }
  }
}

const SEED = 0x811c9dc5 | 0;
const PRIME = 0x01000193;

/** FNV-1a over the characters from last to first (so suffix hashes come for free). */
function hashName(name: string): number {
  let h = SEED;
  for (let i = name.length - 1; i >= 0; i--) h = Math.imul(h ^ name.charCodeAt(i), PRIME);
  return h;
}

function emit(refs: Refs | undefined, hit: (rule: number) => void, self: boolean): void {
  if (refs === undefined) return;
  if (typeof refs === "number") return one(refs, hit, self);
  for (const r of refs) one(r, hit, self);
}

function one(ref: number, hit: (rule: number) => void, self: boolean): void {
  const kind = ref & 3;
  if (self ? kind !== WILDCARD : kind !== EXACT) hit(ref >>> 2);
}

/** Lower-cases and strips one trailing dot. */
export function canonicalName(name: string): string {
  const n = name.endsWith(".") ? name.slice(0, -1) : name;
  return n.toLowerCase();
}
