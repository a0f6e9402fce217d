import { describe, expect, it } from "vitest";
import type { NetworkInterfaceInfo } from "node:os";
import { gatewayOnPathRuleset, gatewayPlan, parseGatewayClients, subnetOf } from "../../src/transparent/gateway.js";
import { onPathRuleset } from "../../src/transparent/onpath.js";
import { plan } from "../../src/transparent/topology.js";
import { censorRuleset } from "../../src/transparent/topology.js";
import { HitSets, kernelRuleset, parseHits } from "../../src/transparent/kernel-rules.js";
import { compilePolicy } from "../../src/policy/engine.js";
import { profileFrom } from "../helpers/profiles.js";

const v4 = (address: string, netmask: string): NetworkInterfaceInfo =>
  ({ address, netmask, family: "IPv4", mac: "02:00:00:00:00:01", internal: false, cidr: null }) as unknown as NetworkInterfaceInfo;
const lo = { address: "127.0.0.1", netmask: "255.0.0.0", family: "IPv4", mac: "00:00:00:00:00:00", internal: true, cidr: "127.0.0.1/8" } as NetworkInterfaceInfo;
const IFACES = { lo: [lo], eth0: [v4("198.18.192.2", "255.255.255.0")], eth1: [v4("10.89.0.7", "255.255.0.0")] };

describe("gateway mode (Docker): the plan", () => {
  it("parses CIDR[=NETWORK] and auto, and refuses anything else", () => {
    expect(parseGatewayClients("198.18.192.0/24")).toEqual({ prefix: "198.18.192.0/24" });
    expect(parseGatewayClients("198.18.192.0/24=beeline-fixed")).toEqual({ prefix: "198.18.192.0/24", network: "beeline-fixed" });
    expect(parseGatewayClients("auto")).toEqual({ prefix: "auto" });
    expect(() => parseGatewayClients("198.18.192.0")).toThrow(/IPv4 subnet/);
    expect(() => parseGatewayClients("300.1.1.0/24")).toThrow(/IPv4 subnet/);
    expect(subnetOf("10.89.3.7", "255.255.0.0")).toBe("10.89.0.0/16");
  });

  it("finds the interface and address this host has in each client subnet", () => {
    const p = gatewayPlan({ clients: [{ prefix: "198.18.192.0/24" }], networks: ["megaline", "beeline"], chatUdp: [{ service: "viber", ports: [7985] }], interfaces: IFACES });
    expect(p.mode).toBe("gateway");
    expect(p.links).toEqual([{ network: "megaline", censor: "eth0", censorV4: "198.18.192.2", clientPrefix: "198.18.192.0/24" }]);
    expect(p.chatUdp).toEqual([{ service: "viber", ports: [7985], relayPort: 15003 }]);
    const auto = gatewayPlan({ clients: [{ prefix: "auto", network: "beeline" }], networks: ["megaline", "beeline"], chatUdp: [], interfaces: IFACES });
    expect(auto.links.map((l) => [l.censor, l.clientPrefix, l.network])).toEqual([["eth0", "198.18.192.0/24", "beeline"], ["eth1", "10.89.0.0/16", "beeline"]]);
  });

  it("says what is wrong: no interface in the subnet, an unknown network, two subnets on one interface", () => {
    expect(() => gatewayPlan({ clients: [{ prefix: "198.18.200.0/24" }], networks: ["a"], chatUdp: [], interfaces: IFACES }))
      .toThrow(/no interface here has an address in that subnet \(have: lo 127\.0\.0\.1\/8, eth0 198\.18\.192\.2, eth1 10\.89\.0\.7\)/);
    expect(() => gatewayPlan({ clients: [{ prefix: "198.18.192.0/24", network: "nope" }], networks: ["a"], chatUdp: [], interfaces: IFACES })).toThrow(/no network "nope"/);
    expect(() => gatewayPlan({ clients: [{ prefix: "198.18.192.0/24" }, { prefix: "198.18.192.0/25" }], networks: ["a"], chatUdp: [], interfaces: IFACES })).toThrow(/two client subnets on one interface/);
    expect(() => gatewayPlan({ clients: [{ prefix: "198.18.192.0/24" }], networks: ["a"], chatUdp: [], services: ["x"], interfaces: IFACES })).toThrow(/--services/);
  });

  it("the ruleset intercepts on the client interfaces only, and leaves the censor's own listeners (not DNS) alone", () => {
    const text = censorRuleset(gatewayPlan({ clients: [{ prefix: "198.18.192.0/24" }], networks: ["a"], chatUdp: [], interfaces: IFACES }));
    expect(text).toContain('iifname { "eth0" } meta l4proto tcp tcp dport != 53 meta mark set 0x1 tproxy to :15001 accept');
    expect(text).toContain("meta l4proto { tcp, udp } th dport != 53 fib daddr type local accept");
    expect(text).toContain('iifname "eth0" meta nfproto ipv4 meta l4proto { udp, tcp } th dport 53 dnat ip to 198.18.192.2:53');
    expect(text).not.toContain("ip6 to");
    expect(text).toContain("policy drop");
  });
});

describe("gateway mode on the on-path datapath: the ruleset", () => {
  const onPath = { hops: { client: 2, server: 3 }, residualSeconds: 120 };
  const p = gatewayPlan({ clients: [{ prefix: "198.18.192.0/24" }], networks: ["a"], chatUdp: [{ service: "viber", ports: [7985] }], services: ["198.18.200.0/24"], pins: ["198.18.51.10"], interfaces: IFACES, onPath });
  const text = gatewayOnPathRuleset(p);

  it("plans the on-path datapath with the box's hops", () => {
    expect(p).toMatchObject({ mode: "gateway", datapath: "onpath", hops: { client: 2, server: 3 }, residualSeconds: 120 });
    expect(gatewayPlan({ clients: [{ prefix: "198.18.192.0/24" }], networks: ["a"], chatUdp: [], interfaces: IFACES }).datapath).toBeUndefined();
  });

  it("the box reads the client subnet's packets both ways: in from the clients, out from the origin here", () => {
    expect(text).toContain("ip protocol tcp ip saddr { 198.18.192.0/24 } meta mark set mark or 0x100");
    expect(text).toMatch(/chain box_out \{\n\s+type filter hook output priority -190;[^}]*meta mark & 0x4 == 0x4 accept[^}]*ip saddr \{ 198\.19\.0\.0\/16, 198\.18\.51\.10 \} ip daddr \{ 198\.18\.192\.0\/24 \} jump box_read/);
    // The lab's own listeners are never the box's, and there is no box upstream address here.
    expect(text).toContain("fib daddr type local accept");
    expect(text).not.toContain("198.18.255.254");
  });

  it("the hops are TTL rules: before the box (2 routers), and before the server (2 + the box + 3)", () => {
    expect(text).toMatch(/priority -320;[^}]*iifname \{ "eth0" \} ip ttl <= 2 counter drop/);
    expect(text).toContain('iifname { "eth0" } fib daddr type != local ip ttl <= 6 counter drop');
    expect(gatewayOnPathRuleset({ ...p, hops: { client: 0, server: 0 } })).toContain("ip ttl <= 1 counter drop");
    expect(gatewayOnPathRuleset({ ...p, hops: { client: 0, server: 0 } })).not.toMatch(/priority -320;[^}]*drop/);
  });

  it("the world's addresses go to the origin by TPROXY after the box; services are forwarded; DNS and chat UDP as in the proxy gateway", () => {
    expect(text).toContain('iifname { "eth0" } ip daddr { 198.19.0.0/16, 198.18.51.10 } meta l4proto tcp meta mark set 0x1 tproxy ip to 127.0.0.1:15002 accept');
    expect(text.indexOf("meta mark & 0x1 == 0x1 accept", text.indexOf("chain world_pre"))).toBeLessThan(text.indexOf("tproxy ip to"));
    expect(text).toContain('iifname { "eth0" } ip daddr { 198.18.200.0/24 } accept');
    expect(text).toContain('iifname "eth0" meta nfproto ipv4 meta l4proto { udp, tcp } th dport 53 dnat ip to 198.18.192.2:53');
    expect(text).toContain("udp dport { 7985 } dnat ip to 198.18.192.2:15003");
    expect(text).toContain('iifname "eth0" jump net_0');
  });

  it("the namespace chain keeps its own: clients by prefix, the box's upstream address skipped, no output chain", () => {
    const ns = plan(["a"], []);
    const t = onPathRuleset({ ...ns, datapath: "onpath", hops: { client: 1, server: 1 } });
    expect(t).toContain("ip daddr 198.18.255.254 accept");
    expect(t).toContain("ip protocol tcp ip saddr 198.18.128.0/17 meta mark set mark or 0x100");
    expect(t).not.toContain("box_out");
  });
});

describe("kernel rules report what they block", () => {
  it("a blocking statement adds the client/destination pair to a hit set first; accepts do not", () => {
    const policy = compilePolicy([profileFrom(`
id: k
title: k
country: ZZ
timezone: UTC
period: { start: "2020-01-01" }
networks: [a]
rules:
  - { id: open, match: { port: 179 }, action: allow }
  - { id: blogs, match: { ip: [198.18.50.10] }, action: drop, seed: s1 }
  - { id: cut, match: { all: true }, action: rst }
`)]);
    const links = [{ network: "a", censor: "eth0", censorV4: "198.18.192.2" }];
    const hits = new HitSets();
    const text = kernelRuleset(policy, links, Date.parse("2020-02-01T00:00:00Z"), hits);
    expect(text).toContain("add set inet chokepoint hit_0_4 { type ipv4_addr . ipv4_addr; flags dynamic, timeout; timeout 30s; }");
    expect(text).toContain('add rule inet chokepoint net_0 ip daddr { 198.18.50.10 } update @hit_0_4 { ip saddr . ip daddr } drop comment "k/blogs"');
    expect(text).toContain('add rule inet chokepoint net_0 meta l4proto { tcp, udp } th dport { 179 } accept comment "k/open"');
    // No address in the match: one statement per family, so that IPv6 is cut too.
    expect(text).toContain('add rule inet chokepoint net_0 meta nfproto ipv6 update @hit_1_6 { ip6 saddr . ip6 daddr } meta l4proto tcp reject with tcp reset comment "k/cut"');
    expect(text).toContain('add rule inet chokepoint net_0 meta nfproto ipv4 update @hit_1_4 { ip saddr . ip daddr } drop comment "k/cut"');
    // The same names on the next rebuild.
    expect(kernelRuleset(policy, links, Date.parse("2020-02-01T00:00:00Z"), hits)).toBe(text);
    const listed = JSON.stringify({ nftables: [
      { metainfo: {} },
      { set: { name: "hit_0_4", elem: [{ elem: { val: { concat: ["198.18.192.9", "198.18.50.10"] }, expires: 28 } }] } },
      { set: { name: "other", elem: [{ elem: { val: { concat: ["1.1.1.1", "2.2.2.2"] } } }] } },
    ] });
    expect(parseHits(listed, hits).map((h) => [h.set.rule.id, h.set.network, h.client, h.ip])).toEqual([["blogs", "a", "198.18.192.9", "198.18.50.10"]]);
  });
});
