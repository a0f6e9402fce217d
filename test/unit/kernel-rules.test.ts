import { describe, expect, it } from "vitest";
import { kernelRuleset, kernelStatements } from "../../src/transparent/kernel-rules.js";
import { censorRuleset, plan } from "../../src/transparent/topology.js";
import { compilePolicy } from "../../src/policy/engine.js";
import { profileFrom } from "../helpers/profiles.js";
import type { Rule } from "../../src/profile/model.js";

const rule = (match: Rule["match"], action: Rule["action"]): Rule => ({ id: "r", profile: "p", match, action, networks: ["*"] });

describe("kernel rules (transparent mode)", () => {
  it("turns address, port and transport rules into nft statements, and leaves the rest to the interceptor", () => {
    expect(kernelStatements(rule({ ip: ["198.18.50.10", "198.18.40.0/24", "2001:db8:19::/48"] }, { type: "drop" }))).toEqual([
      "ip daddr { 198.18.50.10, 198.18.40.0/24 } drop",
      "ip6 daddr { 2001:db8:19::/48 } drop",
    ]);
    expect(kernelStatements(rule({ ip: ["198.18.50.10"] }, { type: "rst" }))).toEqual([
      "ip daddr { 198.18.50.10 } meta l4proto tcp reject with tcp reset",
      "ip daddr { 198.18.50.10 } drop",
    ]);
    expect(kernelStatements(rule({ port: [[179, 179], [3000, 3999]] }, { type: "allow" }))).toEqual(["meta l4proto { tcp, udp } th dport { 179, 3000-3999 } accept"]);
    expect(kernelStatements(rule({ protocol: ["dns"] }, { type: "allow" }))).toEqual(["meta l4proto { udp, tcp } th dport { 53 } accept"]);
    expect(kernelStatements(rule({ all: true }, { type: "shutdown" }))).toEqual(["drop"]);
    // An address rule the interceptor acts on is let through here, so that later drops do not pre-empt it.
    expect(kernelStatements(rule({ ip: ["198.18.81.10"] }, { type: "throttle", rate: 1000 }))).toEqual(["ip daddr { 198.18.81.10 } accept"]);
    expect(kernelStatements(rule({ sni: ["meduza.io"] }, { type: "drop" }))).toBeUndefined();
    expect(kernelStatements(rule({ ip: ["198.18.1.1"], protocol: ["tls"] }, { type: "drop" }))).toBeUndefined();
  });

  it("fills each network's chain with the rules in force at a lab instant", () => {
    const profile = profileFrom(`
id: k
title: k
country: ZZ
timezone: UTC
period: { start: "2020-01-01" }
networks: [a, b]
rules:
  - { id: open, match: { port: 179 }, action: allow }
  - { id: cut, match: { all: true }, networks: [a], window: { start: "2020-01-02", end: "2020-01-03" }, action: shutdown }
  - { id: name, match: { sni: x.example }, action: drop }
`);
    const policy = compilePolicy([profile]);
    const links = plan(["a", "b"], []).links;
    const before = kernelRuleset(policy, links, Date.parse("2020-01-01T12:00:00Z"));
    const during = kernelRuleset(policy, links, Date.parse("2020-01-02T12:00:00Z"));
    expect(before).toContain("flush chain inet chokepoint net_0");
    expect(before).not.toContain("k/cut");
    expect(during).toContain('add rule inet chokepoint net_0 drop comment "k/cut"');
    expect(during).not.toContain('net_1 drop');
    expect(during.indexOf("k/open")).toBeLessThan(during.indexOf("k/cut"));
    expect(policy.stableUntil(Date.parse("2020-01-01T12:00:00Z"))).toBe(Date.parse("2020-01-02T00:00:00Z"));
  });

  it("the censor's ruleset sends TCP to TPROXY and DNS on each link to that network's resolver", () => {
    const text = censorRuleset(plan(["home", "away"], ["198.18.40.10"]));
    expect(text).toContain('iifname "cpr*" meta l4proto tcp tcp dport != 53 meta mark set 0x1 tproxy to :15001 accept');
    expect(text).toContain('iifname "cpr1" meta nfproto ipv6 meta l4proto { udp, tcp } th dport 53 dnat ip6 to [2001:db8:c0:1::1]:53');
    expect(text).toContain('iifname "cpr0" jump net_0');
    expect(() => plan(["a"], ["198.18.200.1"])).toThrow(/range transparent mode uses/);
  });
});
