// OONI's messaging and circumvention tests, as data: which endpoints each checks and how
// (a TCP connect, or a TLS handshake and an HTTP GET), and the test keys a correct probe
// writes when the censor lets those endpoints be or stops them at a stage (the failure
// string is the stage's, from verdicts.ts). `chokepoint expect service:NAME` reads it, and
// docs/VERDICTS.md renders it. Sources: ooni/spec nettests ts-018 (whatsapp), ts-019
// (facebook_messenger), ts-020 (telegram), ts-023 (tor), ts-028 (dnscheck), ts-029 (signal).
import type { Policy } from "../policy/engine.js";
import type { World } from "../world/world.js";
import { expectedVerdict, type ExpectedVerdict } from "./expect.js";

export type MessagingTestName = "whatsapp" | "telegram" | "signal" | "facebook_messenger" | "tor" | "dnscheck";

/** One check of a test: a URL it fetches (TLS and HTTP), or endpoints it only connects to. */
export interface Check { key: string; urls?: string[]; connect?: { names: string[]; ports: number[] }; /** Blocked when every target fails (else: when any does). */ all?: boolean }

export interface MessagingTest {
  name: MessagingTestName;
  spec: string;
  checks: Check[];
  /** The keys for each check's outcome: null failure = it worked. */
  keys: (failures: Record<string, string | null>) => Record<string, unknown>;
}

const eNames = Array.from({ length: 16 }, (_, i) => `e${i + 1}.whatsapp.net`);
const status = (f: string | null | undefined): "ok" | "blocked" => (f ? "blocked" : "ok");

export const MESSAGING_TESTS: Record<MessagingTestName, MessagingTest> = {
  whatsapp: {
    name: "whatsapp", spec: "ts-018",
    checks: [
      { key: "endpoints", connect: { names: eNames, ports: [443, 5222] }, all: true },
      { key: "registration", urls: ["https://v.whatsapp.net/v2/register"] },
      { key: "web", urls: ["https://web.whatsapp.com/", "http://web.whatsapp.com/"] },
    ],
    keys: (f) => ({
      whatsapp_endpoints_status: status(f.endpoints), whatsapp_endpoints_blocked: f.endpoints ? eNames : [], whatsapp_endpoints_dns_inconsistent: [],
      registration_server_status: status(f.registration), registration_server_failure: f.registration ?? null,
      whatsapp_web_status: status(f.web), whatsapp_web_failure: f.web ?? null,
    }),
  },
  telegram: {
    name: "telegram", spec: "ts-020",
    checks: [
      { key: "tcp", connect: { names: ["149.154.175.50", "149.154.167.51", "149.154.175.100", "149.154.167.91", "149.154.171.5"], ports: [80, 443] }, all: true },
      { key: "http", urls: ["http://149.154.175.50/", "http://149.154.167.51/"], all: true },
      { key: "web", urls: ["https://web.telegram.org/"] },
    ],
    keys: (f) => ({ telegram_tcp_blocking: !!f.tcp, telegram_http_blocking: !!f.http, telegram_web_status: status(f.web), telegram_web_failure: f.web ?? null }),
  },
  signal: {
    name: "signal", spec: "ts-029",
    checks: [{ key: "backend", urls: ["https://textsecure-service.whispersystems.org/", "https://storage.signal.org/", "https://api.directory.signal.org/", "https://cdn.signal.org/", "https://cdn2.signal.org/", "https://sfu.voip.signal.org/"] }],
    keys: (f) => ({ signal_backend_status: status(f.backend), signal_backend_failure: f.backend ?? null }),
  },
  facebook_messenger: {
    name: "facebook_messenger", spec: "ts-019",
    checks: [
      { key: "dns", connect: { names: ["b-api.facebook.com", "b-graph.facebook.com", "edge-mqtt.facebook.com", "external.xx.fbcdn.net", "scontent.xx.fbcdn.net", "star.c10r.facebook.com"], ports: [] } },
      { key: "tcp", connect: { names: ["b-api.facebook.com", "b-graph.facebook.com", "edge-mqtt.facebook.com", "external.xx.fbcdn.net", "scontent.xx.fbcdn.net", "star.c10r.facebook.com"], ports: [443] } },
    ],
    keys: (f) => ({ facebook_dns_blocking: !!f.dns, facebook_tcp_blocking: !!f.tcp }),
  },
  tor: {
    name: "tor", spec: "ts-023",
    checks: [{ key: "or_port", connect: { names: ["bridge.tor.example"], ports: [443] } }],
    keys: (f) => ({ or_port_total: 1, or_port_accessible: f.or_port ? 0 : 1, or_port_dirauth_total: 0, or_port_dirauth_accessible: 0, dir_port_total: 0, dir_port_accessible: 0, obfs4_total: 0, obfs4_accessible: 0 }),
  },
  dnscheck: {
    name: "dnscheck", spec: "ts-028",
    checks: [{ key: "lookup", urls: ["https://dns.google/dns-query"] }],
    keys: (f) => ({ bootstrap_failure: null, lookups: { "dns.google": { failure: f.lookup ?? null } } }),
  },
};

export interface ExpectedMessaging {
  target: string;
  test: MessagingTestName;
  network: string;
  at: string;
  /** OONI's test keys a correct probe writes. */
  keys: Record<string, unknown>;
  /** The lab's word: service-unavailable when any check is blocked. */
  observe: "service-unavailable" | "false";
  /** Per check: the verdict on its first blocked target (or its first target). */
  checks: Record<string, { failure: string | null; target: string; stage?: ExpectedVerdict["stage"]; rule?: string }>;
}

/** The stage a check meets, on one target: connect-only checks do not send first bytes. */
function checkOne(policy: Policy, world: World, c: Check, target: string, network: string, at: number): { failure: string | null; stage?: ExpectedVerdict["stage"]; rule?: string } {
  const v = expectedVerdict(policy, world, target, network, at);
  if (v.blocking === false || (c.connect && v.stage !== "dns" && v.stage !== "connect") || (c.connect?.ports.length === 0 && v.stage !== "dns")) return { failure: null };
  return { failure: v.failure ?? (v.stage === "dns" ? "dns_lookup_error" : "generic_timeout_error"), stage: v.stage, ...(v.rule ? { rule: v.rule } : {}) };
}

/** What OONI's test `name` reports on `network` at lab time `at`, from the policy. */
export function expectedMessaging(policy: Policy, world: World, target: string, network: string, at: number): ExpectedMessaging {
  const name = /^service:([a-z_]+)$/.exec(target)?.[1] as MessagingTestName | undefined;
  const test = name ? MESSAGING_TESTS[name] : undefined;
  if (!test) throw new Error(`${target}: not one of OONI's messaging tests (service:${Object.keys(MESSAGING_TESTS).join(", service:")})`);
  const checks: ExpectedMessaging["checks"] = {};
  for (const c of test.checks) {
    const targets = c.urls ?? c.connect!.names.flatMap((n) => (c.connect!.ports.length ? c.connect!.ports : [443]).map((p) => `https://${n.includes(":") ? `[${n}]` : n}:${p}/`));
    const results = targets.map((t) => ({ target: t, ...checkOne(policy, world, c, t, network, at) }));
    const failed = results.filter((r) => r.failure);
    const blocked = c.all ? failed.length === results.length : failed.length > 0;
    checks[c.key] = blocked ? failed[0]! : { failure: null, target: results[0]!.target };
  }
  const failures = Object.fromEntries(Object.entries(checks).map(([k, v]) => [k, v.failure]));
  return {
    target, test: test.name, network, at: new Date(at).toISOString(), keys: test.keys(failures),
    observe: Object.values(failures).some(Boolean) ? "service-unavailable" : "false", checks,
  };
}

/** docs/VERDICTS.md's section for these tests. */
export function messagingDoc(): string[] {
  const out = ["## OONI's messaging and circumvention tests", "",
    "`chokepoint expect service:NAME` computes these from the policy: each check's targets are",
    "judged as above (a connect-only check is stopped only at DNS or the connection; a fetch at any",
    "stage), and the keys follow. `observe` is `service-unavailable` when any check is blocked.", "",
    "| test (spec) | check | what it does | blocked when | keys it sets |", "|---|---|---|---|---|"];
  for (const t of Object.values(MESSAGING_TESTS)) {
    for (const c of t.checks) {
      const what = c.urls ? `fetches ${c.urls.join(", ")}` : c.connect!.ports.length ? `connects to ${c.connect!.names.length > 3 ? `${c.connect!.names[0]} ... ${c.connect!.names.at(-1)} (${c.connect!.names.length})` : c.connect!.names.join(", ")} on ${c.connect!.ports.join(", ")}` : `resolves ${c.connect!.names.join(", ")}`;
      const keys = Object.keys(t.keys({ [c.key]: "generic_timeout_error" })).filter((k) => JSON.stringify(t.keys({ [c.key]: "generic_timeout_error" })[k]) !== JSON.stringify(t.keys({})[k]));
      out.push(`| ${t.name} (${t.spec}) | ${c.key} | ${what} | ${c.all ? "every target fails" : "any target fails"} | ${keys.map((k) => `\`${k}\`: ${JSON.stringify(t.keys({ [c.key]: "generic_timeout_error" })[k])} (else ${JSON.stringify(t.keys({})[k])})`).join("; ")} |`);
    }
  }
  out.push("", "The tor row checks the lab world's bridge (`bridge.tor.example:443`), not Tor's directory authorities. OONI's tor test only connects to an OR port, so a censor that lets the connection be and stops Tor's TLS handshake (kz-2012-tor-dpi) leaves it `or_port_accessible`: a correct probe of that kind sees no block there. dnscheck's lookup is the DoH stand-in at dns.google. OONI has no test for Viber or SMS (`service:viber`, `service:sms` are the lab's own, measured by conformance).", "");
  return out;
}
