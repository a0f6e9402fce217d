// Name index: exact names, names with all their subdomains (".a.b"), subdomains only ("*.a.b").
//
// An open-addressing hash table in one Int32Array: each slot holds two independent 32-bit
// hashes of a name (64 bits: the chance that another name matches both is about 1 in 2^64
// per probe, so names are not compared) and the index of its entry. A lookup hashes the query
// once, from its last character to its first, which yields both hashes of every suffix at a
// label boundary on the way, and probes the table for each: no substrings are built, and each
// probe touches one slot. A lookup costs O(length of the name) and about one cache miss per
// label, whatever the number of names (a JS Map of a million strings costs several).

const EXACT = 0, SUFFIX = 1, WILDCARD = 2;
type Refs = number | number[];

const SEED = 0x811c9dc5 | 0;
const PRIME = 0x01000193;
const SEED2 = 0x9747b28c | 0;
const PRIME2 = 0x5bd1e995;
const SLOT = 3; // h1, h2, entry index

export class NameIndex {
  /** Entries by name while building (dedupe); the table is built from it on first lookup. */
  private readonly byName = new Map<string, number>();
  private names: string[] = [];
  private refs: Refs[] = [];
  private table = new Int32Array(0);
  private mask = 0;
  private dirty = false;
  size = 0;

  /** Adds an entry in name notation for rule `rule`. */
  add(entry: string, rule: number): void {
    let kind = EXACT;
    let name = entry;
    if (entry.startsWith("*.")) { kind = WILDCARD; name = entry.slice(2); }
    else if (entry.startsWith(".")) { kind = SUFFIX; name = entry.slice(1); }
    const ref = rule * 4 + kind;
    if (this.byName.size === 0 && this.names.length) this.names.forEach((n, i) => this.byName.set(n, i));
    const at = this.byName.get(name);
    if (at === undefined) {
      this.byName.set(name, this.names.length);
      this.names.push(name);
      this.refs.push(ref);
    } else {
      const cur = this.refs[at]!;
      if (typeof cur === "number") { if (cur !== ref) this.refs[at] = [cur, ref]; }
      else if (!cur.includes(ref)) cur.push(ref);
    }
    this.size++;
    this.dirty = true;
  }

  /** Builds the table (load factor at most 1/2): called by the first lookup after additions. */
  private build(): void {
    let slots = 16;
    while (slots < this.names.length * 2) slots *= 2;
    const table = new Int32Array(slots * SLOT).fill(-1);
    const mask = slots - 1;
    for (let i = 0; i < this.names.length; i++) {
      const [h, h2] = hashName(this.names[i]!);
      let s = h & mask;
      while (table[s * SLOT + 2] !== -1) s = (s + 1) & mask;
      table[s * SLOT] = h;
      table[s * SLOT + 1] = h2;
      table[s * SLOT + 2] = i;
    }
    this.table = table;
    this.mask = mask;
    this.byName.clear(); // only needed while adding: rebuilt if add() is called again
    this.dirty = false;
  }

  /** Calls `hit(rule)` for every rule whose entry matches `name` (lower-case, no trailing dot). */
  lookup(name: string, hit: (rule: number) => void): void {
    if (this.names.length === 0 || name.length === 0) return;
    if (this.dirty) this.build();
    const table = this.table, mask = this.mask;
    let h = SEED, h2 = SEED2;
    for (let i = name.length - 1; i >= 0; i--) {
      const c = name.charCodeAt(i);
      h = Math.imul(h ^ c, PRIME);
      h2 = Math.imul(h2 ^ c, PRIME2);
      if (i !== 0 && name.charCodeAt(i - 1) !== 46 /* . */) continue;
      for (let s = h & mask; ; s = (s + 1) & mask) {
        const idx = table[s * SLOT + 2]!;
        if (idx === -1) break;
        if (table[s * SLOT] === h && table[s * SLOT + 1] === h2) {
          emit(this.refs[idx]!, hit, i === 0);
          break;
        }
      }
    }
  }
}

/** Two FNV-1a-style hashes over the characters from last to first (suffix hashes come for free). */
function hashName(name: string): [number, number] {
  let h = SEED, h2 = SEED2;
  for (let i = name.length - 1; i >= 0; i--) {
    const c = name.charCodeAt(i);
    h = Math.imul(h ^ c, PRIME);
    h2 = Math.imul(h2 ^ c, PRIME2);
  }
  return [h, h2];
}

function emit(refs: Refs, hit: (rule: number) => void, self: boolean): void {
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
