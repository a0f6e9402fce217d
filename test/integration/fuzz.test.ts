// Bounded fuzzing, kept in `npm test`: structured inputs from fast-check (control API bodies,
// profiles, instants) and random bytes (every parser, every listener). Nothing may throw out
// of a parser, nothing may crash the lab, and the lab must answer normally afterwards. The
// long run is the soak (npm run bench -- soak).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import { connect } from "node:net";
import { request } from "node:http";
import { join } from "node:path";
import { writeFileSync } from "node:fs";
import { startLab, type Lab } from "../../src/index.js";
import { parseQuery } from "../../src/dns/wire.js";
import { classify } from "../../src/dpi/classify.js";
import { parseClientHello } from "../../src/dpi/clienthello.js";
import { parseProxyHeader } from "../../src/world/proxy-header.js";
import { parseFrame } from "../../src/relay/protocol.js";
import { canonicalAddress, addressKind } from "../../src/util/address.js";
import { parseInstant, toInstant } from "../../src/util/time.js";
import { loadProfile } from "../../src/profile/load.js";
import { stringify } from "yaml";
import { tempDir } from "../helpers/profiles.js";

let lab: Lab;
beforeAll(async () => { lab = await startLab({ profiles: ["example-basics"], at: "2024-05-05T20:30:00Z" }); });
afterAll(() => lab.stop());

function post(path: string, body: string): Promise<number> {
  return new Promise((resolve) => {
    const req = request({ host: "127.0.0.1", port: lab.endpoints.control!.port, method: "POST", path, headers: { "content-type": "application/json" } }, (res) => { res.resume(); res.on("end", () => resolve(res.statusCode ?? 0)); });
    req.on("error", () => resolve(-1));
    req.end(body);
  });
}

describe("structured fuzzing (fast-check)", () => {
  it("control API bodies: answered with a status that says whose fault it is, never a crash", async () => {
    const value = fc.oneof(fc.double(), fc.integer(), fc.string(), fc.boolean(), fc.constant(null), fc.array(fc.integer(), { maxLength: 3 }),
      fc.constantFrom(1e308, -0, Number.MAX_SAFE_INTEGER, "2014-02-13T17:30:00+06:00", "+275760-09-13", "/etc/passwd", "../x", "example-basics"));
    const body = fc.dictionary(fc.constantFrom("seek", "speed", "pause", "activate", "deactivate", "variant", "profile", "url", "dns", "service", "network"), value, { maxKeys: 3 });
    await fc.assert(fc.asyncProperty(fc.constantFrom("/v1/clock", "/v1/profiles", "/v1/reset", "/v1/try"), body, async (path, b) => {
      const status = await post(path, JSON.stringify(b));
      expect([200, 400, 404, 413, 503]).toContain(status);
    }), { numRuns: 150 });
    expect(lab.status().profiles.length).toBeGreaterThan(0);
    expect(lab.decide({ name: "nx.example.org", qtype: "A" }).action.type).toBeDefined();
  });

  it("instants: parsed or refused, never thrown, and the lab clock accepts what it can hold", () => {
    fc.assert(fc.property(fc.string(), (s) => {
      const t = parseInstant(s);
      expect(t === undefined || Number.isFinite(t)).toBe(true);
      try { toInstant(s, "x"); } catch (e) { expect((e as Error).message).toMatch(/not a date/); }
    }), { numRuns: 2000 });
  });

  it("profiles of any shape: errors with positions, never an exception", () => {
    const dir = tempDir();
    const file = join(dir, "p.yaml");
    const leaf = fc.oneof(fc.string({ maxLength: 12 }), fc.integer(), fc.boolean(), fc.constant(null));
    const tree = fc.letrec((tie) => ({ node: fc.oneof({ depthSize: "small" }, leaf, fc.array(tie("node"), { maxLength: 3 }), fc.dictionary(fc.constantFrom("id", "match", "action", "rules", "window", "sni", "domain", "file", "drop", "throttle", "start", "networks", "x"), tie("node"), { maxKeys: 3 })) })).node;
    const doc = fc.record({ id: fc.oneof(fc.constant("fz"), fc.string()), title: leaf, country: fc.constantFrom("ZZ", "kz", 1), timezone: fc.constantFrom("UTC", "Mars/Base", "+06:00"), period: tree, networks: tree, rules: tree }, { requiredKeys: [] });
    fc.assert(fc.property(doc, (d) => {
      writeFileSync(file, stringify(d));
      const r = loadProfile(file);
      for (const e of r.errors) expect(e.line).toBeGreaterThanOrEqual(1);
      expect(!!r.profile || r.errors.length > 0).toBe(true);
    }), { numRuns: 300 });
  });

  it("addresses: every IPv4-mapped spelling canonicalizes to the IPv4 address, and its kind is the IPv4 one", () => {
    fc.assert(fc.property(fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)), ([a, b, c, d]) => {
      const v4 = `${a}.${b}.${c}.${d}`;
      const hex = `::ffff:${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
      for (const s of [v4, `::ffff:${v4}`, hex, `[${hex}]`, `0:0:0:0:0:ffff:${v4}`]) {
        expect(canonicalAddress(s)).toBe(v4);
        expect(addressKind(s)).toBe(addressKind(v4));
      }
    }), { numRuns: 1000 });
  });
});

describe("random bytes", () => {
  it("every parser takes any bytes without throwing", () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 600 }), (u) => {
      const b = Buffer.from(u);
      parseQuery(b);
      classify(b, false);
      classify(b, true);
      parseClientHello(Buffer.concat([Buffer.from([0x16, 0x03, 0x01]), b]));
      parseProxyHeader(Buffer.concat([Buffer.from("PROXY "), b]));
      parseFrame(b.toString("utf8"));
    }), { numRuns: 5000 });
  });

  it("every TCP listener takes random bytes and goes on answering", async () => {
    const ports = [lab.endpoints.dns!.port, lab.endpoints.relay!.port, lab.endpoints.sms!.port, lab.endpoints.control!.port, lab.endpoints.httpProxy!.port, lab.endpoints.socks!.port];
    const samples = fc.sample(fc.uint8Array({ minLength: 1, maxLength: 2048 }), 60);
    await Promise.all(samples.flatMap((u, i) => [ports[i % ports.length]!].map((port) => new Promise<void>((resolve) => {
      const s = connect(port, "127.0.0.1", () => { s.write(Buffer.from(u)); s.end(); });
      s.on("error", () => resolve());
      s.on("close", () => resolve());
      s.resume();
      setTimeout(() => { s.destroy(); resolve(); }, 2000);
    }))));
    expect(await post("/v1/reset", "{}")).toBe(200);
    const { run } = await import("../helpers/tools.js");
    const dig = await run("dig", [`@127.0.0.1`, "-p", String(lab.endpoints.dns!.port), "+tries=1", "+time=2", "nx.example.org"]);
    expect(dig.stdout).toMatch(/NXDOMAIN/);
  });
});
