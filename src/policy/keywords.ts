// Many byte patterns at once: an Aho-Corasick automaton over bytes. One pass over the
// payload finds every pattern, whatever their number. Case-insensitive patterns live in a
// second automaton fed ASCII-lower-cased bytes.

interface Node { next: Map<number, number>; fail: number; out: number[] }

export class KeywordIndex {
  private nodes: Node[] = [{ next: new Map(), fail: 0, out: [] }];
  private built = false;
  private count = 0;

  constructor(private readonly ignoreCase: boolean) {}

  get size(): number { return this.count; }

  add(pattern: string, rule: number): void {
    const bytes = Buffer.from(this.ignoreCase ? pattern.toLowerCase() : pattern, "utf8");
    let s = 0;
    for (const b of bytes) {
      let n = this.nodes[s]!.next.get(b);
      if (n === undefined) {
        n = this.nodes.length;
        this.nodes.push({ next: new Map(), fail: 0, out: [] });
        this.nodes[s]!.next.set(b, n);
      }
      s = n;
    }
    if (!this.nodes[s]!.out.includes(rule)) this.nodes[s]!.out.push(rule);
    this.count++;
    this.built = false;
  }

  /** Computes failure links (breadth first) and merges outputs along them. */
  build(): void {
    const queue: number[] = [];
    for (const n of this.nodes[0]!.next.values()) { this.nodes[n]!.fail = 0; queue.push(n); }
    for (let qi = 0; qi < queue.length; qi++) {
      const s = queue[qi]!;
      for (const [b, n] of this.nodes[s]!.next) {
        let f = this.nodes[s]!.fail;
        while (f !== 0 && !this.nodes[f]!.next.has(b)) f = this.nodes[f]!.fail;
        const target = this.nodes[f]!.next.get(b);
        this.nodes[n]!.fail = target !== undefined && target !== n ? target : 0;
        for (const r of this.nodes[this.nodes[n]!.fail]!.out) if (!this.nodes[n]!.out.includes(r)) this.nodes[n]!.out.push(r);
        queue.push(n);
      }
    }
    this.built = true;
  }

  lookup(payload: Uint8Array, hit: (rule: number) => void): void {
    if (this.count === 0) return;
    if (!this.built) this.build();
    const seen = new Set<number>();
    let s = 0;
    for (let i = 0; i < payload.length; i++) {
      let b = payload[i]!;
      if (this.ignoreCase && b >= 65 && b <= 90) b += 32;
      let n = this.nodes[s]!.next.get(b);
      while (n === undefined && s !== 0) {
        s = this.nodes[s]!.fail;
        n = this.nodes[s]!.next.get(b);
      }
      s = n ?? 0;
      for (const r of this.nodes[s]!.out) {
        if (!seen.has(r)) { seen.add(r); hit(r); }
      }
    }
  }
}
