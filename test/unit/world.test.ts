import { describe, expect, it } from "vitest";
import { isIP } from "node:net";
import { World } from "../../src/world/world.js";
import { buildWorld } from "../../src/world/build.js";
import { loadWorldDir } from "../../src/world/data.js";
import { CidrIndex } from "../../src/policy/cidr.js";
import { formatError } from "../../src/util/yaml-source.js";

const inRange = (cidr: string, ip: string): boolean => {
  const idx = new CidrIndex();
  idx.add(cidr, 0);
  let hit = false;
  idx.lookup(ip, () => (hit = true));
  return hit;
};

describe("the lab world", () => {
  const world = buildWorld([]);

  it("world/*.yaml files are valid", () => {
    expect(loadWorldDir().errors.map(formatError)).toEqual([]);
  });

  it("derives the same addresses for a name on every build, in 198.19.0.0/16 and 2001:db8:19::/48", () => {
    const again = buildWorld([]);
    for (const name of ["anything.example", "www.example.kz", "a.b.c.d.example"]) {
      const a = world.addresses(name);
      expect(again.addresses(name)).toEqual(a);
      expect(new World({ hosts: {}, nonexistent: [], certs: {} }).addresses(name).v6).toEqual(a.v6);
      expect(inRange("198.19.0.0/16", a.v4[0]!)).toBe(true);
      expect(inRange("2001:db8:19::/48", a.v6[0]!)).toBe(true);
      expect(isIP(a.v6[0]!)).toBe(6);
    }
    expect(world.addresses("Anything.Example.").v4).toEqual(world.addresses("anything.example").v4);
  });

  it("pins shared platform addresses: every *.wordpress.com blog together, www.wordpress.com apart", () => {
    const blog1 = world.addresses("news.wordpress.com").v4;
    const blog2 = world.addresses("someone.wordpress.com").v4;
    const www = world.addresses("www.wordpress.com").v4;
    expect(blog1).toEqual(blog2);
    expect(blog1).toEqual(["198.18.50.10", "198.18.50.11", "198.18.50.12"]);
    expect(www).toEqual(["198.18.51.10"]);
    expect(world.addresses("e7.whatsapp.net").v4).toEqual(["198.18.60.17"]);
    expect(world.answer("news.wordpress.com", "AAAA")).toEqual({ rcode: "NOERROR", answers: [] });
  });

  it("answers NXDOMAIN for .invalid and listed names, NODATA for types it has nothing of", () => {
    expect(world.answer("x.invalid", "A").rcode).toBe("NXDOMAIN");
    expect(world.answer("a.nonexistent.example", "A").rcode).toBe("NXDOMAIN");
    expect(world.answer("x.example", "TXT")).toEqual({ rcode: "NOERROR", answers: [] });
    expect(world.answer("x.example", "HTTPS")).toEqual({ rcode: "NOERROR", answers: [] });
    const any = world.answer("x.example", "ANY").answers.map((a) => a.type);
    expect(any).toEqual(["A", "AAAA"]);
  });

  it("gives names it knows of distinct addresses: collisions only where pinned", () => {
    const known = Array.from({ length: 3000 }, (_, i) => `site${i}.example.kz`);
    const w = new World({ hosts: { ".shared.example": ["198.18.99.1"] }, nonexistent: [], certs: {} }, { knownNames: known });
    const seen = new Map<string, string>();
    for (const n of known) {
      const a = w.addresses(n).v4[0]!;
      expect(seen.get(a), `${n} collides with ${seen.get(a)}`).toBeUndefined();
      seen.set(a, n);
    }
    expect(w.addresses("a.shared.example").v4).toEqual(w.addresses("b.shared.example").v4);
    // A name the world did not know of never takes a known name's address.
    for (let i = 0; i < 2000; i++) expect(seen.get(w.addresses(`other${i}.example`).v4[0]!)).toBeUndefined();
  });

  it("a profile's world section wins over world/*.yaml", () => {
    const p = { world: { hosts: { "www.wordpress.com": ["198.18.77.7"] }, nonexistent: ["gone.example"], certs: {} }, rules: [] } as unknown as Parameters<typeof buildWorld>[0][number];
    const w = buildWorld([p]);
    expect(w.addresses("www.wordpress.com").v4).toEqual(["198.18.77.7"]);
    expect(w.exists("gone.example")).toBe(false);
  });
});
