// The conformance run: for each regime profile (and each variant its expectations name),
// a lab pinned at each expectation's instant, each target measured from each network, and
// the observation compared with what the profile says a probe should see.
import { startLab, type Lab } from "../lab/lab.js";
import { loadProfile } from "../profile/load.js";
import type { Expectation, Profile } from "../profile/model.js";
import type { Observation, Verdict } from "../policy/types.js";
import { resolveProfileRef, scanProfiles, summarize } from "../profile/catalog.js";
import { SERVICES, type Service } from "../relay/protocol.js";
import { connectThroughSocks } from "../util/socks-client.js";
import { firstAnswer, obfsBytes, torHello } from "./flows.js";
import { crossCheck, type ClientCheck, type ClientTarget } from "./clients.js";
import { startSession } from "../transparent/session.js";
import { agrees, expectedVerdict } from "../probe/expect.js";
import { expectedMessaging } from "../probe/messaging.js";
import { dnsEndpoint, labCaName, measureService, measureUrl, type Measurement, type MeasureOptions } from "../probe/measure.js";

export interface Row {
  profile: string;
  variant?: string;
  target: string;
  network: string;
  at: string;
  expected: string;
  observed: string;
  detail: string;
  /** The same target through real clients (dig, curl, openssl), where they apply and are installed. */
  client?: ClientCheck & { pass: boolean };
  /** The same real clients from the network's namespace in transparent mode (--transparent). */
  transparent?: ClientCheck & { pass: boolean; datapath: "proxy" | "onpath" };
  /** What the verdict table says a probe concludes, computed from the policy without traffic (`chokepoint expect`; web and service:whatsapp targets). */
  computed?: { observe: string; agrees: boolean };
  /** The own probe, the real clients (when they ran) and the computed verdict all say what was expected. */
  pass: boolean;
}

/** The instant a row is measured at: its own, or noon of the profile's first day. */
function instantOf(p: Profile, e: Expectation): number {
  if (e.at !== undefined) return e.at;
  const start = p.period.start + 12 * 3_600_000;
  return p.period.end !== undefined && start >= p.period.end ? p.period.start : start;
}

/** Measures one target as seen from `network`. */
export async function measure(o: MeasureOptions, target: string): Promise<Measurement> {
  if (/^https?:\/\//.test(target)) return measureUrl(o, new URL(target));
  const svc = /^service:(.+)$/.exec(target);
  if (svc) {
    if (!SERVICES.includes(svc[1] as Service)) throw new Error(`unknown service in target "${target}"`);
    return measureService(o, svc[1] as Service);
  }
  const raw = /^(tor|obfs4?):\/\/([^:/]+):(\d+)\/?$/.exec(target);
  if (raw) {
    const s = await connectThroughSocks({ ...o.lab.endpoints.socks!, username: o.network }, raw[2]!, Number(raw[3]), 3000).catch(() => undefined);
    if (!s) return { observed: "tcp_ip", detail: "does not connect" };
    const r = await firstAnswer(s, raw[1] === "tor" ? torHello(raw[2]) : obfsBytes(), 3000);
    if (r === "answered") return { observed: "false", detail: raw[1] === "tor" ? "the server answered the Tor handshake" : "the obfs-style bytes passed (echoed)" };
    return { observed: r === "timeout" ? "tls-timeout" : "tls-reset", detail: raw[1] === "tor" ? "Tor's ClientHello got no ServerHello" : "blocked" };
  }
  throw new Error(`a target is an http(s) URL, service:NAME, tor://HOST:PORT or obfs4://HOST:PORT; got "${target}"`);
}

/** The verdict the table gives for a row's target, from the lab's policy (the same as `chokepoint expect`); undefined for targets it does not cover. */
function computedVerdict(lab: Lab, target: string, expected: string, network: string, at: number): Row["computed"] {
  if (target.startsWith("service:")) {
    if (target !== "service:whatsapp") return undefined;
    const v = expectedMessaging(lab.policy, lab.world, target, network, at);
    return { observe: v.observe, agrees: v.observe === expected };
  }
  if (!/^https?:\/\//.test(target)) return undefined;
  const v = expectedVerdict(lab.policy, lab.world, target, network, at);
  return { observe: v.observe, agrees: agrees(expected, v) };
}

/** Whether an observation is what the expectation said. */
export function conforms(expected: string, m: Measurement): boolean {
  if (expected === m.observed) return true;
  if (expected === "blockpage") return m.observed === "http-diff";
  if (expected === "residual") return /^then residual blocking/.test(m.detail);
  return false;
}

/** Whether a real client's view agrees: a client sees residual blocking as the failure it causes. */
export function clientConforms(expected: string, c: ClientCheck): boolean {
  if (expected === "residual") return c.observed === "tls-timeout" || c.observed === "tls-reset";
  return conforms(expected, { observed: c.observed, detail: c.detail });
}

export interface RunOptions {
  /** Profile ids (default: every regime profile). */
  profiles?: string[];
  onRow?: (row: Row) => void;
  onProfile?: (id: string, variant: string | undefined) => void;
  /** Cross-check http(s) targets with dig, curl and openssl (default true). */
  clients?: boolean;
  /** Also run the real clients in transparent mode, from each network's namespace (Linux, root). */
  transparent?: boolean;
  /** Check that ordinary sites stay reachable on every network where no rule names them (default true). */
  ordinary?: boolean;
}

/**
 * Popular sites a regime must not block by accident (a fingerprint that matches names, say):
 * on every network of the profile, each is measured unless a rule blocks it on purpose (by
 * name, address, port or everything), and must then be reachable.
 */
export const ORDINARY_TARGETS = ["www.google.com", "www.facebook.com", "www.youtube.com", "www.twitter.com", "www.example.com", "www.pinterest.com", "www.wikipedia.org"];

async function ordinaryRows(lab: Lab, profile: Profile, id: string, variant: string | undefined, at: number): Promise<Row[]> {
  const rows: Row[] = [];
  lab.clock.seek(at);
  lab.interceptor.residual.clear();
  for (const network of profile.networks) {
    for (const host of ORDINARY_TARGETS) {
      const ip = lab.world.addresses(host).v4[0] ?? "";
      const on = (obs: Observation): Verdict => lab.policy.decide(obs, at, network);
      // Blocked on purpose: a rule that names it (DNS, Host, SNI, URL), its address or port, or everything.
      const deliberate = [on({ name: host, qtype: "A" }), on({ sni: host, host, ip, port: 443, transport: "tcp", protocol: "tls" })]
        .some((v) => v.rule !== undefined && v.action.type !== "allow" && deliberateRule(profile, v.rule));
      if (deliberate) continue;
      const m = await measureUrl({ lab, network, labCaName: labCaName(lab), throughput: false }, new URL(`https://${host}/`));
      rows.push({ profile: id, ...(variant ? { variant } : {}), target: `https://${host}/ (ordinary)`, network, at: new Date(at).toISOString(), expected: "false", observed: m.observed, detail: m.detail, pass: m.observed === "false" });
    }
  }
  return rows;
}

/** Whether a rule blocks by what a user means to block (names, addresses, ports, all), not by a fingerprint or keyword that an ordinary site might show. */
function deliberateRule(profile: Profile, ruleId: string): boolean {
  const r = profile.rules.find((x) => x.id === ruleId);
  return !!r && (["domain", "host", "sni", "url", "ip", "port", "all", "service"] as const).some((k) => r.match[k] !== undefined);
}

export async function runConformance(opts: RunOptions = {}): Promise<Row[]> {
  const known = scanProfiles();
  // Ids of the catalog or profile files; every one is checked before anything runs.
  const refs = opts.profiles ?? known.filter((k) => k.kind === "regime").map((k) => k.id);
  const summaries = refs.map((ref) => {
    const file = resolveProfileRef(ref, known);
    const s = known.find((k) => k.file === file) ?? summarize(file);
    if (!s) throw new Error(`${ref}: not a profile (no id)`);
    return s;
  });
  const rows: Row[] = [];
  for (const summary of summaries) {
    const id = summary.id;
    const base = loadProfile(summary.file);
    if (!base.profile) throw new Error(`${id} does not load: ${base.errors.map((e) => e.message).join("; ")}`);
    const expectations = base.profile.expect;
    const variants = [...new Set(expectations.map((e) => e.variant))];
    for (const variant of variants) {
      opts.onProfile?.(id, variant);
      const mine = expectations.filter((e) => e.variant === variant);
      const profile = variant ? loadProfile(summary.file, { variant }).profile! : base.profile;
      const lab = await startLab({ profiles: [summary.file], ...(variant ? { variant } : {}), at: instantOf(profile, mine[0]!), ports: "auto" });
      try {
        const caFile = lab.pki.authority("lab").certFile;
        const pending: { row: Row; e: Expectation }[] = [];
        for (const e of mine) for (const network of e.networks ?? [lab.network]) {
          const at = instantOf(profile, e);
          lab.clock.seek(at);
          lab.interceptor.residual.clear();
          const m = await measure({ lab, network, labCaName: labCaName(lab) }, e.target);
          const explicit: ClientTarget = { world: lab.world, caFile, path: { kind: "explicit", network, dns: dnsEndpoint(lab, network), socks: lab.endpoints.socks!, ...(lab.endpoints.httpProxy ? { httpProxy: lab.endpoints.httpProxy } : {}) } };
          const check = opts.clients === false ? undefined : await crossCheck(explicit, e.target, e.observe === "throttled" || m.observed === "throttled");
          const client = check ? { ...check, pass: clientConforms(e.observe, check) } : undefined;
          const computed = computedVerdict(lab, e.target, e.observe, network, at);
          const row: Row = {
            profile: id, ...(variant ? { variant } : {}), target: e.target, network, at: new Date(at).toISOString(),
            expected: e.observe, observed: m.observed, detail: m.detail, ...(client ? { client } : {}), ...(computed ? { computed } : {}),
            pass: conforms(e.observe, m) && (client?.pass ?? true) && (computed?.agrees ?? true),
          };
          if (opts.transparent) pending.push({ row, e });
          else { rows.push(row); opts.onRow?.(row); }
        }
        if (opts.transparent) {
          await transparentPass(pending, { file: summary.file, variant, world: lab.world, caFile });
          for (const { row } of pending) { rows.push(row); opts.onRow?.(row); }
        }
        if (opts.ordinary !== false) for (const row of await ordinaryRows(lab, profile, id, variant, instantOf(profile, mine[0]!))) { rows.push(row); opts.onRow?.(row); }
      } finally {
        await lab.stop();
      }
    }
  }
  return rows;
}


/**
 * The rows again, with the real clients in the client namespaces of one transparent lab,
 * seeked to each row's instant (its stdin control channel), as the explicit run does.
 */
async function transparentPass(pending: { row: Row; e: Expectation }[], o: { file: string; variant: string | undefined; world: ClientTarget["world"]; caFile: string }): Promise<void> {
  if (!pending.length) return;
  const session = await startSession({ profiles: [o.file], at: pending[0]!.row.at, ...(o.variant ? { variant: o.variant } : {}) });
  try {
    for (const { row, e } of pending) {
      await session.seek(row.at);
      const path = { kind: "transparent" as const, network: row.network, namespace: session.namespaceOf(row.network) };
      const check = await crossCheck({ world: o.world, caFile: o.caFile, path }, e.target, e.observe === "throttled" || row.observed === "throttled");
      if (!check) continue;
      row.transparent = { ...check, pass: clientConforms(e.observe, check), datapath: session.datapath };
      row.pass &&= row.transparent.pass;
    }
  } finally {
    await session.stop();
  }
}
