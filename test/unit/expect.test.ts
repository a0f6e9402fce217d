// Expected verdicts computed from the policy (no traffic): table-driven for each stage and
// enactment, and against every shipped profile's expect rows (which conformance measures
// with real traffic), so the two cannot drift apart.
import { describe, expect, it } from "vitest";
import { join } from "node:path";
import { scanProfiles } from "../../src/profile/catalog.js";
import { loadProfile } from "../../src/profile/load.js";
import { compilePolicy } from "../../src/policy/engine.js";
import { buildWorld } from "../../src/world/build.js";
import { agrees, expectedVerdict, webTarget } from "../../src/probe/expect.js";
import { expectedMessaging } from "../../src/probe/messaging.js";
import { verdictsDoc } from "../../src/probe/doc.js";
import { groundTruth, score, type LoggedEvent } from "../../src/probe/score.js";
import { readFileSync } from "node:fs";
import { ROOT } from "../helpers/cli.js";
import type { Profile } from "../../src/profile/model.js";
import { writeFiles } from "../helpers/profiles.js";

const PROFILE = `
id: expect-test
title: every stage
country: ZZ
timezone: UTC
period: { start: "2000-01-01" }
networks: [net-a, net-b]
rules:
  - { id: nx, match: { domain: nx.example }, action: nxdomain }
  - { id: quiet-dns, match: { domain: quiet.example }, action: drop }
  - { id: refused-ip, match: { ip: 198.18.97.0/24 }, action: rst }
  - { id: sni-drop, match: { sni: silent.example }, action: drop, residual: { seconds: 120, key: 4-tuple } }
  - { id: sni-rst, match: { sni: reset.example }, action: rst }
  - { id: intercepted, match: { sni: mitm.example }, action: { mitm: { ca: qaznet } } }
  - { id: slow, match: { sni: slow.example }, action: { throttle: { rate: 64kbit } } }
  - { id: page, match: { host: page.example }, action: { blockpage: { status: 403, body: blocked } } }
  - { id: only-b, match: { domain: b-only.example }, networks: [net-b], action: nxdomain }
world:
  hosts:
    "refused.example": ["198.18.97.1"]
`;

function setup(text = PROFILE): { profile: Profile; verdict: (target: string, network?: string) => ReturnType<typeof expectedVerdict> } {
  const dir = writeFiles({ "p.yaml": text });
  const profile = loadProfile(join(dir, "p.yaml")).profile!;
  const at = Date.parse("2001-01-01T00:00:00Z");
  const policy = compilePolicy([profile], { labStart: at });
  const world = buildWorld([profile], { mode: "lab" });
  return { profile, verdict: (target, network = "net-a") => expectedVerdict(policy, world, target, network, at) };
}

describe("expected verdicts, stage by stage", () => {
  const { verdict } = setup();
  it.each([
    ["https://open.example/", { stage: "tls", blocking: false, accessible: true, observe: "false" }],
    ["http://open.example/", { stage: "http", blocking: false, observe: "false" }],
    ["nx.example", { stage: "dns", blocking: "dns", failure: "dns_nxdomain_error", observe: "dns", rule: "nx" }],
    ["https://quiet.example/", { stage: "dns", blocking: "dns", failure: "generic_timeout_error" }],
    ["https://refused.example/", { stage: "connect", blocking: "tcp_ip", failure: "connection_refused", observe: "tcp_ip" }],
    ["https://silent.example/", { stage: "tls", blocking: "http-failure", failure: "generic_timeout_error", observe: "tls-timeout", residual: { seconds: 120, key: "4-tuple" } }],
    ["https://reset.example/", { stage: "tls", blocking: "http-failure", failure: "connection_reset", observe: "tls-reset" }],
    ["https://mitm.example/", { stage: "tls", blocking: "http-failure", failure: "ssl_unknown_authority", observe: "mitm" }],
    ["https://slow.example/", { stage: "tls", blocking: false, accessible: true, observe: "throttled" }],
    ["http://page.example/some/path", { stage: "http", blocking: "http-diff", observe: "blockpage" }],
    ["https://page.example/", { stage: "tls", blocking: false }], // a Host rule: nothing to read in a ClientHello
  ])("%s", (target, want) => {
    expect(verdict(target)).toMatchObject(want);
  });

  it("per network, and with the rule that decided", () => {
    expect(verdict("https://b-only.example/", "net-a")).toMatchObject({ blocking: false });
    expect(verdict("https://b-only.example/", "net-b")).toMatchObject({ blocking: "dns", rule: "only-b", profile: "expect-test" });
  });

  it("OONI's messaging tests: the keys a correct probe writes, per check", () => {
    const dir = writeFiles({ "m.yaml": PROFILE.replace("rules:\n", "rules:\n  - { id: wa-web, match: { sni: web.whatsapp.com }, action: rst }\n  - { id: tg, match: { ip: 149.154.160.0/20 }, action: drop }\n") });
    const profile = loadProfile(join(dir, "m.yaml")).profile!;
    const at = Date.parse("2001-01-01T00:00:00Z");
    const policy = compilePolicy([profile], { labStart: at });
    const world = buildWorld([profile], { mode: "lab" });
    const wa = expectedMessaging(policy, world, "service:whatsapp", "net-a", at);
    expect(wa).toMatchObject({ observe: "service-unavailable", keys: { whatsapp_endpoints_status: "ok", registration_server_status: "ok", whatsapp_web_status: "blocked", whatsapp_web_failure: "connection_reset" } });
    expect(wa.checks.web).toMatchObject({ stage: "tls", rule: "wa-web" });
    expect(expectedMessaging(policy, world, "service:telegram", "net-a", at).keys).toMatchObject({ telegram_tcp_blocking: true, telegram_http_blocking: true, telegram_web_status: "ok" });
    expect(expectedMessaging(policy, world, "service:signal", "net-a", at)).toMatchObject({ observe: "false", keys: { signal_backend_status: "ok" } });
    expect(() => expectedMessaging(policy, world, "service:sms", "net-a", at)).toThrow(/not one of OONI's messaging tests/);
  });

  it("says clearly what it does not measure", () => {
    expect(() => webTarget("service:whatsapp")).toThrow(/messaging services and Tor bridges are not web targets/);
    expect(() => webTarget("ftp://x.example/")).toThrow(/only http and https URLs \(got ftp\)/);
    expect(webTarget("Example.KZ")).toMatchObject({ host: "example.kz", port: 443, tls: true });
  });
});

describe("every shipped profile's expect rows, computed without traffic", () => {
  const rows: string[] = [];
  let web = 0, messaging = 0;
  for (const s of scanProfiles().filter((p) => p.kind === "regime")) {
    const base = loadProfile(s.file).profile!;
    for (const variant of [...new Set(base.expect.map((e) => e.variant))]) {
      const profile = variant ? loadProfile(s.file, { variant }).profile! : base;
      const mine = profile.expect.filter((x) => x.variant === variant);
      const start = profile.period.start + 12 * 3_600_000;
      const instant = (e: (typeof mine)[number]): number => e.at ?? (profile.period.end !== undefined && start >= profile.period.end ? profile.period.start : start);
      // As conformance runs them: one lab per variant, started at its first row's instant (relative windows count from there).
      const policy = compilePolicy([profile], { labStart: instant(mine[0]!) });
      for (const e of mine) {
        const at = instant(e);
        const world = buildWorld([profile], { mode: "lab" });
        // OONI's WhatsApp test: its keys from the policy, against the rows conformance measures with OONI's logic and a message.
        if (e.target === "service:whatsapp") {
          for (const network of e.networks ?? [profile.networks[0]!]) {
            messaging++;
            const v = expectedMessaging(policy, world, e.target, network, at);
            if (v.observe !== e.observe) rows.push(`${s.id} ${e.target} on ${network}: expected ${e.observe}, computed ${v.observe} (${JSON.stringify(v.keys)})`);
          }
          continue;
        }
        if (/^(service|tor|obfs4):/.test(e.target)) continue;
        for (const network of e.networks ?? [profile.networks[0]!]) {
          web++;
          const v = expectedVerdict(policy, world, e.target, network, at);
          if (!agrees(e.observe, v)) rows.push(`${s.id}${variant ? `/${variant}` : ""} ${e.target} on ${network}: expected ${e.observe}, computed ${v.observe} (${v.blocking}, ${v.stage}, rule ${v.rule ?? "-"})`);
        }
      }
    }
  }
  it(`agree with what the profiles say (${web} web rows, ${messaging} WhatsApp rows)`, () => {
    expect(web).toBeGreaterThan(40);
    expect(messaging).toBeGreaterThanOrEqual(4);
    expect(rows).toEqual([]);
  });
});

describe("docs/VERDICTS.md", () => {
  it("is the table as the code has it (npm run docs writes it)", () => {
    expect(readFileSync(join(ROOT, "docs", "VERDICTS.md"), "utf8")).toBe(verdictsDoc());
  });
});

describe("ground truth from the event log, stage by stage (no traffic)", () => {
  const ev = (t: number, component: string, action: string, observation: Record<string, unknown>, detail: Record<string, unknown> = {}): LoggedEvent =>
    ({ ts: new Date(Date.UTC(2026, 0, 1, 0, 0, t)).toISOString(), component, action, network: "net-a", observation, detail });
  it.each([
    ["an NXDOMAIN", [ev(1, "resolver", "nxdomain", { name: "x.example" })], "dns"],
    ["a kernel drop of the SYN", [ev(1, "resolver", "allow", { name: "x.example" }, { answers: [{ address: "198.19.1.1" }] }), ev(2, "interceptor", "drop", { ip: "198.19.1.1" }, { enforcedBy: "kernel" })], "tcp_ip"],
    ["a block page", [ev(1, "interceptor", "blockpage", { host: "x.example", protocol: "http" }, { stage: "payload" })], "http-diff"],
    ["the box dropping a ClientHello", [ev(1, "box", "drop", { sni: "x.example", protocol: "tls" }, { stage: "packet" })], "http-failure"],
    ["a throttle", [ev(1, "interceptor", "throttle", { sni: "x.example", protocol: "tls" }, { stage: "payload" })], "false"],
    ["an allowed flow, then a residual hit on a retry", [ev(1, "interceptor", "allow", { sni: "x.example", protocol: "tls" }, { stage: "payload" }), ev(3, "interceptor", "drop", { sni: "x.example" }, { residual: true })], "tcp_ip"],
  ] as const)("%s", (_what, events, truth) => {
    expect(groundTruth([...events])?.truth).toBe(truth);
  });
  it("no decisions: no ground truth; only the lab's own events: none either", () => {
    expect(groundTruth([])).toBeUndefined();
    expect(groundTruth([ev(1, "lab", "allow", {}, { box: "takeover-failed" })])).toBeUndefined();
  });
  it("pairs a measurement with its target's decisions on its network, in its span", () => {
    const events = [ev(1, "resolver", "allow", { name: "x.example" }, { answers: [{ address: "198.19.1.1" }] }), ev(2, "interceptor", "drop", { ip: "198.19.1.1", port: 443, sni: "x.example", protocol: "tls" }, { stage: "payload" }), ev(2, "interceptor", "drop", { sni: "y.example", protocol: "tls" }, { stage: "payload" })];
    const at = Date.UTC(2026, 0, 1, 0, 0, 0);
    const m = (target: string, network?: string, start = at) => ({ target, start, verdict: "http-failure" as const, source: "t", ...(network ? { network } : {}) });
    const s = score([m("https://x.example/", "net-a"), m("https://x.example/", "net-b"), m("https://x.example/", "net-a", at + 3_600_000), m("https://z.example/")], events);
    expect(s.rows.map((r) => r.result)).toEqual(["right", "unknown", "unknown", "unknown"]);
  });
});

describe("tagging a measurement through the proxy username", () => {
  it("NETWORK+TAG: the tag is a measurement id of 1-64 safe characters", async () => {
    const { splitUser } = await import("../../src/interceptor/entries.js");
    expect(splitUser("kazakhtelecom-megaline")).toEqual({ user: "kazakhtelecom-megaline" });
    expect(splitUser("kazakhtelecom-megaline+20240514T150000Z_abc:1")).toEqual({ user: "kazakhtelecom-megaline", tag: "20240514T150000Z_abc:1" });
    expect(splitUser("net+")).toBeNull();
    expect(splitUser("net+has space")).toBeNull();
    expect(splitUser(`net+${"x".repeat(65)}`)).toBeNull();
  });
});
