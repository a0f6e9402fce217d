import { describe, expect, it } from "vitest";
import { NameIndex } from "../../src/policy/names.js";
import { CidrIndex } from "../../src/policy/cidr.js";
import { KeywordIndex } from "../../src/policy/keywords.js";

const hits = (fn: (hit: (r: number) => void) => void): number[] => {
  const out: number[] = [];
  fn((r) => out.push(r));
  return out.sort((a, b) => a - b);
};

describe("NameIndex", () => {
  const idx = new NameIndex();
  idx.add("exact.example", 0);
  idx.add(".suffix.example", 1);
  idx.add("*.wild.example", 2);
  idx.add(".example", 3);
  it("matches exact names only exactly", () => {
    expect(hits((h) => idx.lookup("exact.example", h))).toEqual([0, 3]);
    expect(hits((h) => idx.lookup("a.exact.example", h))).toEqual([3]);
  });
  it("matches a suffix entry on the name and all subdomains", () => {
    expect(hits((h) => idx.lookup("suffix.example", h))).toEqual([1, 3]);
    expect(hits((h) => idx.lookup("a.b.suffix.example", h))).toEqual([1, 3]);
    expect(hits((h) => idx.lookup("notsuffix.example", h))).toEqual([3]);
  });
  it("matches a wildcard on subdomains only", () => {
    expect(hits((h) => idx.lookup("wild.example", h))).toEqual([3]);
    expect(hits((h) => idx.lookup("x.wild.example", h))).toEqual([2, 3]);
  });
  it("misses unrelated names", () => {
    expect(hits((h) => idx.lookup("example.org", h))).toEqual([]);
  });
});

describe("CidrIndex", () => {
  const idx = new CidrIndex();
  idx.add("192.0.2.0/24", 0);
  idx.add("192.0.2.7", 1);
  idx.add("2001:db8::/32", 2);
  idx.add("2001:db8:19::1", 3);
  idx.add("0.0.0.0/0", 4);
  it("matches IPv4 prefixes and hosts", () => {
    expect(hits((h) => idx.lookup("192.0.2.7", h))).toEqual([0, 1, 4]);
    expect(hits((h) => idx.lookup("192.0.3.1", h))).toEqual([4]);
  });
  it("matches IPv6 prefixes, including compressed forms", () => {
    expect(hits((h) => idx.lookup("2001:db8:19::1", h))).toEqual([2, 3]);
    expect(hits((h) => idx.lookup("2001:0db8:0019:0000:0000:0000:0000:0001", h))).toEqual([2, 3]);
    expect(hits((h) => idx.lookup("2001:db9::1", h))).toEqual([]);
  });
  it("matches IPv4-mapped IPv6 addresses with IPv4 rules", () => {
    expect(hits((h) => idx.lookup("::ffff:192.0.2.7", h))).toEqual([0, 1, 4]);
  });
});

describe("KeywordIndex (Aho-Corasick)", () => {
  it("finds many patterns in one pass, overlapping ones included", () => {
    const idx = new KeywordIndex(false);
    ["he", "she", "his", "hers", "torproject"].forEach((p, i) => idx.add(p, i));
    idx.build();
    expect(hits((h) => idx.lookup(Buffer.from("ushers"), h))).toEqual([0, 1, 3]);
    expect(hits((h) => idx.lookup(Buffer.from("GET /torproject.org"), h))).toEqual([4]);
    expect(hits((h) => idx.lookup(Buffer.from("nothing here"), h))).toEqual([0]);
    expect(hits((h) => idx.lookup(Buffer.from("TORPROJECT"), h))).toEqual([]);
  });
  it("ignores ASCII case when asked to", () => {
    const idx = new KeywordIndex(true);
    idx.add("Bambuser", 7);
    idx.build();
    expect(hits((h) => idx.lookup(Buffer.from("Host: WWW.BAMBUSER.COM"), h))).toEqual([7]);
  });
});
