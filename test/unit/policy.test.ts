import { describe, expect, it } from "vitest";
import { compilePolicy } from "../../src/policy/engine.js";
import { HEADER, profileFrom } from "../helpers/profiles.js";

const NOW = Date.parse("2020-06-01T12:00:00Z");

function policyOf(rules: string, extra = "", files: Record<string, string> = {}) {
  return compilePolicy([profileFrom(`${HEADER}${extra}\nrules:\n${rules}`, {}, files)], { labStart: NOW });
}

describe("matchers", () => {
  const p = policyOf(`
  - { id: domain, match: { domain: .dns.example }, action: nxdomain }
  - { id: host, match: { host: web.example }, action: { blockpage: { status: 451 } } }
  - { id: sni, match: { sni: "*.tls.example" }, action: rst }
  - { id: url, match: { url: "http://news.example/politics" }, action: { blockpage: { status: 403 } } }
  - { id: keyword, match: { keyword: [torproject, "Tor Browser"] }, action: fin }
  - { id: ip, match: { ip: ["203.0.113.0/24", "2001:db8:bad::/48"] }, action: drop }
  - { id: port, match: { port: ["5242-5243", 4244] }, action: rst }
  - { id: protocol, match: { protocol: openvpn }, action: rst }
  - { id: fp, match: { fingerprint: tor-2012 }, action: tls-alert }
  - { id: service, match: { service: sms }, action: reject }
`);
  const d = (obs: object) => p.decide(obs, NOW, "net-a").rule;
  it("domain (DNS query name), with subdomains and any case", () => {
    expect(d({ name: "dns.example" })).toBe("domain");
    expect(d({ name: "A.Dns.Example." })).toBe("domain");
    expect(d({ name: "dns.example.org" })).toBeUndefined();
  });
  it("host (HTTP Host), port stripped", () => {
    expect(d({ host: "web.example:8080" })).toBe("host");
    expect(d({ host: "www.web.example" })).toBeUndefined();
  });
  it("sni, wildcard = subdomains only", () => {
    expect(d({ sni: "a.tls.example" })).toBe("sni");
    expect(d({ sni: "tls.example" })).toBeUndefined();
  });
  it("url: host plus path prefix", () => {
    expect(d({ host: "news.example", path: "/politics/today" })).toBe("url");
    expect(d({ host: "news.example", path: "/sport" })).toBeUndefined();
  });
  it("keyword: any of several byte patterns", () => {
    expect(d({ payload: Buffer.from("GET /download/Tor Browser HTTP/1.1") })).toBe("keyword");
    expect(d({ payload: Buffer.from("x torproject y") })).toBe("keyword");
    expect(d({ payload: Buffer.from("nothing") })).toBeUndefined();
  });
  it("ip: v4 and v6 prefixes", () => {
    expect(d({ ip: "203.0.113.9" })).toBe("ip");
    expect(d({ ip: "2001:db8:bad:1::2" })).toBe("ip");
    expect(d({ ip: "198.51.100.1" })).toBeUndefined();
  });
  it("port: single ports and ranges", () => {
    expect(d({ port: 5243 })).toBe("port");
    expect(d({ port: 4244 })).toBe("port");
    expect(d({ port: 443 })).toBeUndefined();
  });
  it("protocol, fingerprint, service", () => {
    expect(d({ protocol: "openvpn" })).toBe("protocol");
    expect(d({ fingerprints: ["ja3:abc", "tor-2012"] })).toBe("fp");
    expect(d({ service: "sms" })).toBe("service");
    expect(d({ service: "whatsapp" })).toBeUndefined();
  });
  it("returns the verdict with rule, profile and action", () => {
    expect(p.decide({ name: "dns.example" }, NOW, "net-a")).toMatchObject({ action: { type: "nxdomain" }, rule: "domain", profile: "t" });
    expect(p.decide({ name: "ok.example" }, NOW, "net-a")).toEqual({ action: { type: "allow" } });
  });
});

describe("rules", () => {
  it("AND the matchers of one rule", () => {
    const p = policyOf(`  - { id: both, match: { sni: x.example, port: 443 }, action: rst }\n`);
    expect(p.decide({ sni: "x.example", port: 443 }, NOW, "net-a").rule).toBe("both");
    expect(p.decide({ sni: "x.example", port: 8443 }, NOW, "net-a").rule).toBeUndefined();
    expect(p.decide({ port: 443 }, NOW, "net-a").rule).toBeUndefined();
  });
  it("first match in declaration order wins; an earlier allow is an exception", () => {
    const p = policyOf(`
  - { id: keep-www, match: { domain: www.wordpress.example }, action: allow }
  - { id: platform, match: { domain: .wordpress.example }, action: nxdomain }
  - { id: later, match: { domain: .wordpress.example }, action: servfail }
`);
    expect(p.decide({ name: "blog.wordpress.example" }, NOW, "net-a").rule).toBe("platform");
    expect(p.decide({ name: "www.wordpress.example" }, NOW, "net-a")).toMatchObject({ rule: "keep-www", action: { type: "allow" } });
  });
  it("profiles take precedence in activation order", () => {
    const a = profileFrom(HEADER.replace("id: t", "id: first") + "rules:\n  - { id: r, match: { domain: x.example }, action: refused }\n");
    const b = profileFrom(HEADER.replace("id: t", "id: second") + "rules:\n  - { id: r, match: { domain: x.example }, action: nxdomain }\n");
    expect(compilePolicy([a, b]).decide({ name: "x.example" }, NOW, "net-a").profile).toBe("first");
    expect(compilePolicy([b, a]).decide({ name: "x.example" }, NOW, "net-a").profile).toBe("second");
  });
  it("apply only to their networks", () => {
    const p = policyOf(`  - { id: only-b, match: { domain: x.example }, networks: [net-b], action: nxdomain }\n  - { id: any, match: { domain: y.example }, networks: ["*"], action: nxdomain }\n`);
    expect(p.decide({ name: "x.example" }, NOW, "net-a").rule).toBeUndefined();
    expect(p.decide({ name: "x.example" }, NOW, "net-b").rule).toBe("only-b");
    expect(p.decide({ name: "y.example" }, NOW, "elsewhere").rule).toBe("any");
  });
  it("apply only inside their windows and the profile's period", () => {
    const p = compilePolicy([profileFrom(`${HEADER.replace('period: { start: "2000-01-01" }', 'period: { start: "2011-06-11", end: "2011-07-18" }')}
rules:
  - { id: evening, match: { sni: s.example }, window: { daily: { from: "20:00", to: "22:00" } }, action: drop }
  - { id: always, match: { sni: a.example }, action: drop }
`)]);
    const inPeriod = Date.parse("2011-07-01T20:30:00Z");
    expect(p.decide({ sni: "s.example" }, inPeriod, "net-a").rule).toBe("evening");
    expect(p.decide({ sni: "s.example" }, Date.parse("2011-07-01T19:59:00Z"), "net-a").rule).toBeUndefined();
    expect(p.decide({ sni: "a.example" }, Date.parse("2011-07-18T00:00:00Z"), "net-a").rule).toBeUndefined();
    expect(p.decide({ sni: "a.example" }, Date.parse("2011-06-10T23:59:59Z"), "net-a").rule).toBeUndefined();
  });
  it("windows given as a list hold if any holds", () => {
    const p = policyOf(`  - id: two
    match: { domain: x.example }
    window: [{ start: "2020-01-01", end: "2020-01-02" }, { start: "2020-06-01", end: "2020-06-02" }]
    action: nxdomain
`);
    expect(p.decide({ name: "x.example" }, NOW, "net-a").rule).toBe("two");
    expect(p.decide({ name: "x.example" }, Date.parse("2020-03-01T00:00:00Z"), "net-a").rule).toBeUndefined();
  });
  it("probability: a deterministic share of flows", () => {
    const p = policyOf(`  - { id: some, match: { domain: x.example }, probability: 0.3, action: nxdomain }\n`);
    let hit = 0;
    for (let i = 0; i < 10_000; i++) if (p.decide({ name: "x.example", flow: `f${i}` }, NOW, "net-a").rule) hit++;
    expect(hit / 10_000).toBeGreaterThan(0.27);
    expect(hit / 10_000).toBeLessThan(0.33);
    const once = p.decide({ name: "x.example", flow: "f42" }, NOW, "net-a").rule;
    expect(p.decide({ name: "x.example", flow: "f42" }, NOW, "net-a").rule).toBe(once);
  });
  it("Host matching follows the profile's DPI quirk: sensitive DPI misses other spellings", () => {
    const sens = policyOf(`  - { id: h, match: { host: livejournal.example }, action: rst }\n`, "dpi: { hostCase: sensitive }");
    expect(sens.decide({ host: "livejournal.example" }, NOW, "net-a").rule).toBe("h");
    expect(sens.decide({ host: "LiveJournal.example" }, NOW, "net-a").rule).toBeUndefined();
    const insens = policyOf(`  - { id: h, match: { host: livejournal.example }, action: rst }\n`);
    expect(insens.decide({ host: "LiveJournal.example" }, NOW, "net-a").rule).toBe("h");
  });
  it("all: a shutdown matches everything on its networks", () => {
    const p = policyOf(`  - { id: off, match: { all: true }, networks: [net-b], action: shutdown }\n`);
    expect(p.decide({ ip: "198.19.0.1", port: 80 }, NOW, "net-b").rule).toBe("off");
    expect(p.decide({ name: "x" }, NOW, "net-a").rule).toBeUndefined();
  });
});
