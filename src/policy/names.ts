// Name index: exact names, names with all their subdomains (".a.b"), subdomains only ("*.a.b").
// One Map keyed by name; a lookup walks the query's suffixes, so it costs O(length of the
// name) whatever the number of names indexed.

const EXACT = 0, SUFFIX = 1, WILDCARD = 2;
type Refs = number | number[];

export class NameIndex {
  private readonly map = new Map<string, Refs>();
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
  }

  /** Calls `hit(rule)` for every rule whose entry matches `name` (lower-case, no trailing dot). */
  lookup(name: string, hit: (rule: number) => void): void {
    if (this.map.size === 0 || name.length === 0) return;
    emit(this.map.get(name), hit, true);
    let dot = name.indexOf(".");
    while (dot >= 0) {
      emit(this.map.get(name.slice(dot + 1)), hit, false);
      dot = name.indexOf(".", dot + 1);
    }
  }
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
