// Address index for IPv4 and IPv6 prefixes: a Map per prefix length. A lookup masks the
// address once per length present (at most 33 / 129), so its cost is bounded by the address
// length, not by the number of prefixes.
import { isIP } from "node:net";
import { unmap } from "../util/address.js";

export class CidrIndex {
  private readonly v4 = new Map<number, Map<number, number[]>>();
  private readonly v6 = new Map<number, Map<string, number[]>>();
  private v4Lengths: number[] = [];
  private v6Lengths: number[] = [];

  add(cidr: string, rule: number): void {
    const [addr, lenText] = cidr.split("/") as [string, string | undefined];
    const family = isIP(addr);
    if (family === 4) {
      const len = lenText === undefined ? 32 : Number(lenText);
      const key = mask4(parse4(addr), len);
      push(this.v4, len, key, rule);
      if (!this.v4Lengths.includes(len)) this.v4Lengths = [...this.v4Lengths, len].sort((a, b) => b - a);
    } else if (family === 6) {
      const len = lenText === undefined ? 128 : Number(lenText);
      push(this.v6, len, bits6(addr).slice(0, len), rule);
      if (!this.v6Lengths.includes(len)) this.v6Lengths = [...this.v6Lengths, len].sort((a, b) => b - a);
    } else {
      throw new Error(`not an address or CIDR: ${cidr}`);
    }
  }

  lookup(ip: string, hit: (rule: number) => void): void {
    const family = isIP(ip);
    if (family === 4) {
      if (!this.v4Lengths.length) return;
      const a = parse4(ip);
      for (const len of this.v4Lengths) this.v4.get(len)!.get(mask4(a, len))?.forEach(hit);
    } else if (family === 6) {
      // IPv4-mapped IPv6 (::ffff:a.b.c.d) is matched by IPv4 rules too.
      const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
      if (mapped) this.lookup(mapped[1]!, hit);
      if (!this.v6Lengths.length) return;
      const b = bits6(ip);
      for (const len of this.v6Lengths) this.v6.get(len)!.get(b.slice(0, len))?.forEach(hit);
    }
  }
}

function push<K>(maps: Map<number, Map<K, number[]>>, len: number, key: K, rule: number): void {
  let m = maps.get(len);
  if (!m) maps.set(len, (m = new Map()));
  const list = m.get(key);
  if (!list) m.set(key, [rule]);
  else if (!list.includes(rule)) list.push(rule);
}

function parse4(ip: string): number {
  const p = ip.split(".");
  return ((Number(p[0]) << 24) | (Number(p[1]) << 16) | (Number(p[2]) << 8) | Number(p[3])) >>> 0;
}

function mask4(a: number, len: number): number {
  return len === 0 ? 0 : (a & (0xffffffff << (32 - len))) >>> 0;
}

/** The 128 bits of an IPv6 address as a string of '0'/'1'. */
export function bits6(ip: string): string {
  let text = ip.toLowerCase().split("%")[0]!;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const n = parse4(v4[1]!);
    text = text.slice(0, -v4[1]!.length) + `${(n >>> 16).toString(16)}:${(n & 0xffff).toString(16)}`;
  }
  const [head, tail] = text.split("::") as [string, string | undefined];
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill("0"), ...t];
  return groups.map((g) => parseInt(g || "0", 16).toString(2).padStart(16, "0")).join("");
}

/** Whether an address (IPv4-mapped IPv6 included) falls in one of these prefixes or equals one of these addresses. */
export function prefixMatcher(prefixes: string[]): (ip: string) => boolean {
  const index = new CidrIndex();
  for (const p of prefixes) index.add(p, 0);
  return (ip) => {
    let hit = false;
    index.lookup(unmap(ip), () => { hit = true; });
    return hit;
  };
}
