// The policy engine: compiles the active profiles into indexes and answers
// decide(observation, labTime, network). Pure: no I/O, no timers, no globals.
//
// Matching. A rule's matchers are ANDed (a rule with `sni` and `port` needs both). Every
// matcher type has one index over all rules; a lookup marks, per rule, which of its matcher
// types hit, and a rule matches when all of them did. Lookups cost O(length of the
// name/address/payload), independent of list sizes.
//
// Precedence. Of the rules that match and are active (network, window, profile period,
// probability), the first in declaration order wins: profiles in the order they were
// activated, rules in file order. An `allow` rule placed before a blocking rule is an
// exception to it. No matching active rule: allow.
import type { Profile, Rule, Window } from "../profile/model.js";
import { MATCHER_NAMES, type MatcherName } from "../profile/matchers.js";
import { CidrIndex } from "./cidr.js";
import { KeywordIndex } from "./keywords.js";
import { NameIndex, canonicalName } from "./names.js";
import { ALLOW, type Observation, type Verdict } from "./types.js";
import { windowActive, windowStableUntil } from "./windows.js";

/** One bit per matcher (profile/matchers.ts declares them); a rule's mask must have all of its own. */
const M = Object.fromEntries(MATCHER_NAMES.map((k, i) => [k, 1 << i])) as Record<MatcherName, number>;
type MatcherType = MatcherName;
if (MATCHER_NAMES.length > 16) throw new Error("the engine's per-rule mask (Uint16Array) holds 16 matchers");

interface Compiled {
  rule: Rule;
  required: number;
  anyNetwork: boolean;
  networks: Set<string>;
  periodStart: number;
  periodEnd: number;
  windows?: Window[];
  verdict: Verdict;
}

export interface CompileOptions {
  /** Lab time at which the lab started, for `relative` windows (default 0). */
  labStart?: number;
  /** Called as rules are indexed (entries done, entries in all), for progress on big lists. */
  onProgress?: (done: number, total: number) => void;
}

export interface PolicyStats { rules: number; names: number; addresses: number; keywords: number }

export class Policy {
  readonly rules: readonly Rule[];
  readonly stats: PolicyStats;
  /**
   * No rule has a `probability`: a verdict is then a function of the observation (less its
   * flow), the network and the lab time alone, and components may cache it (see stableUntil).
   */
  readonly deterministic: boolean;
  private readonly compiled: Compiled[] = [];
  private readonly domain = new NameIndex();
  private readonly hostCI = new NameIndex();
  private readonly hostCS = new NameIndex();
  private readonly sni = new NameIndex();
  private readonly url = new Map<string, { path: string; rule: number }[]>();
  private readonly kwCS = new KeywordIndex(false);
  private readonly kwCI = new KeywordIndex(true);
  private readonly ip = new CidrIndex();
  private readonly ports = new Map<number, number[]>();
  private readonly portRanges: [number, number, number][] = [];
  private readonly protocols = new Map<string, number[]>();
  private readonly fingerprints = new Map<string, number[]>();
  private readonly services = new Map<string, number[]>();
  private readonly allRules: number[] = [];
  private readonly labStart: number;
  // Scratch state for one decide() call (single-threaded, so not observable).
  private readonly mask: Uint16Array;
  private touched: number[] = [];
  private readonly hitFns: Record<MatcherType, (r: number) => void>;

  constructor(readonly profiles: readonly Profile[], opts: CompileOptions = {}) {
    this.labStart = opts.labStart ?? 0;
    const rules: Rule[] = [];
    let names = 0, addresses = 0;
    const size = (r: Rule): number => (r.match.domain?.length ?? 0) + (r.match.host?.length ?? 0) + (r.match.sni?.length ?? 0) + (r.match.ip?.length ?? 0) + 1;
    const total = profiles.reduce((n, p) => n + p.rules.reduce((m, r) => m + size(r), 0), 0);
    let done = 0;
    for (const p of profiles) {
      for (const rule of p.rules) {
        done += size(rule);
        opts.onProgress?.(done, total);
        const idx = rules.length;
        rules.push(rule);
        this.compiled.push(this.compileRule(p, rule));
        const m = rule.match;
        const cs = p.dpi.hostCase === "sensitive";
        m.domain?.forEach((n) => this.domain.add(n, idx));
        m.host?.forEach((n) => (cs ? this.hostCS : this.hostCI).add(n, idx));
        m.sni?.forEach((n) => this.sni.add(n, idx));
        names += (m.domain?.length ?? 0) + (m.host?.length ?? 0) + (m.sni?.length ?? 0);
        m.url?.forEach(({ host, path }) => {
          const list = this.url.get(host) ?? [];
          list.push({ path, rule: idx });
          this.url.set(host, list);
        });
        if (m.keyword) for (const k of m.keyword.patterns) (m.keyword.ignoreCase ? this.kwCI : this.kwCS).add(k, idx);
        m.ip?.forEach((c) => this.ip.add(c, idx));
        addresses += m.ip?.length ?? 0;
        m.port?.forEach(([lo, hi]) => {
          if (lo === hi) this.ports.set(lo, [...(this.ports.get(lo) ?? []), idx]);
          else this.portRanges.push([lo, hi, idx]);
        });
        m.protocol?.forEach((v) => push(this.protocols, v, idx));
        m.fingerprint?.forEach((v) => push(this.fingerprints, v, idx));
        m.service?.forEach((v) => push(this.services, v, idx));
        if (m.all) this.allRules.push(idx);
      }
    }
    this.kwCS.build();
    this.kwCI.build();
    this.rules = rules;
    this.mask = new Uint16Array(rules.length);
    const mk = (bit: number) => (r: number): void => {
      if (this.mask[r] === 0) this.touched.push(r);
      this.mask[r]! |= bit;
    };
    this.hitFns = Object.fromEntries(Object.entries(M).map(([k, bit]) => [k, mk(bit)])) as Record<MatcherType, (r: number) => void>;
    this.deterministic = rules.every((r) => r.probability === undefined || r.probability >= 1);
    this.stats = { rules: rules.length, names, addresses, keywords: this.kwCS.size + this.kwCI.size };
  }

  private compileRule(p: Profile, rule: Rule): Compiled {
    let required = 0;
    for (const [k, bit] of Object.entries(M)) if (rule.match[k as MatcherType] !== undefined) required |= bit;
    const verdict: Verdict = { action: rule.action, rule: rule.id, profile: rule.profile };
    if (rule.seed) verdict.seed = rule.seed;
    if (rule.confidence ?? p.confidence) verdict.confidence = (rule.confidence ?? p.confidence)!;
    if (rule.residual) verdict.residual = rule.residual;
    const c: Compiled = {
      rule, required,
      anyNetwork: rule.networks.includes("*"),
      networks: new Set(rule.networks),
      periodStart: p.period.start,
      periodEnd: p.period.end ?? Infinity,
      verdict: Object.freeze(verdict) as Verdict,
    };
    if (rule.windows) c.windows = rule.windows;
    return c;
  }

  /** The verdict for `obs`, seen on `network` at lab time `labTime` (epoch ms). */
  decide(obs: Observation, labTime: number, network: string): Verdict {
    const h = this.hitFns;
    for (const r of this.allRules) h.all(r);
    if (obs.name !== undefined) this.domain.lookup(canonicalName(obs.name), h.domain);
    if (obs.host !== undefined) {
      const host = stripPort(obs.host);
      const lower = canonicalName(host);
      this.hostCI.lookup(lower, h.host);
      this.hostCS.lookup(host.endsWith(".") ? host.slice(0, -1) : host, h.host);
      if (this.url.size) {
        const path = obs.path ?? "/";
        for (const u of this.url.get(lower) ?? []) if (path.startsWith(u.path)) h.url(u.rule);
      }
    }
    if (obs.sni !== undefined) this.sni.lookup(canonicalName(obs.sni), h.sni);
    if (obs.payload !== undefined) {
      this.kwCS.lookup(obs.payload, h.keyword);
      this.kwCI.lookup(obs.payload, h.keyword);
    }
    if (obs.ip !== undefined) this.ip.lookup(obs.ip, h.ip);
    if (obs.port !== undefined) {
      this.ports.get(obs.port)?.forEach(h.port);
      for (const [lo, hi, r] of this.portRanges) if (obs.port >= lo && obs.port <= hi) h.port(r);
    }
    if (this.protocols.size) {
      if (obs.transport !== undefined) this.protocols.get(obs.transport)?.forEach(h.protocol);
      if (obs.protocol !== undefined) this.protocols.get(obs.protocol)?.forEach(h.protocol);
    }
    if (obs.fingerprints && this.fingerprints.size) for (const f of obs.fingerprints) this.fingerprints.get(f)?.forEach(h.fingerprint);
    if (obs.service !== undefined) this.services.get(obs.service)?.forEach(h.service);

    const touched = this.touched;
    if (touched.length === 0) return ALLOW;
    this.touched = [];
    let best = -1;
    if (touched.length > 1) touched.sort((a, b) => a - b);
    for (const r of touched) {
      const ok = this.mask[r] === this.compiled[r]!.required;
      this.mask[r] = 0;
      if (best < 0 && ok && this.active(this.compiled[r]!, obs, labTime, network)) best = r;
    }
    return best < 0 ? ALLOW : this.compiled[best]!.verdict;
  }

  private active(c: Compiled, obs: Observation, t: number, network: string): boolean {
    if (!c.anyNetwork && !c.networks.has(network)) return false;
    if (t < c.periodStart || t >= c.periodEnd) return false;
    if (c.windows && !c.windows.some((w) => windowActive(w, t, this.labStart))) return false;
    const p = c.rule.probability;
    if (p !== undefined && p < 1 && draw(`${c.rule.profile}/${c.rule.id}|${obs.flow ?? ""}`) >= p) return false;
    return true;
  }

  /**
   * A lab instant after `t` before which no rule becomes active or inactive (the next period
   * or window edge of any rule; Infinity when there is none). Until then, with a
   * deterministic policy, the same observation on the same network gets the same verdict.
   */
  stableUntil(t: number): number {
    let until = Infinity;
    for (const c of this.compiled) {
      if (c.periodStart > t && c.periodStart < until) until = c.periodStart;
      if (c.periodEnd > t && c.periodEnd < until) until = c.periodEnd;
      if (c.windows) for (const w of c.windows) until = Math.min(until, windowStableUntil(w, t, this.labStart));
    }
    return until;
  }

  /**
   * The rules in force for `network` at `t`, in precedence order, leaving out those with a
   * `probability` (they are decided per flow). For rules a kernel can apply (transparent mode).
   */
  rulesInForce(t: number, network: string): Rule[] {
    return this.compiled.filter((c) => c.rule.probability === undefined && this.active(c, {}, t, network)).map((c) => c.rule);
  }

  /** Whether any rule matches URL paths of `host` (the interceptor then judges each request). */
  hasUrlRules(host: string): boolean {
    return this.url.size > 0 && this.url.has(canonicalName(stripPort(host)));
  }

}

export function compilePolicy(profiles: readonly Profile[], opts: CompileOptions = {}): Policy {
  return new Policy(profiles, opts);
}

function push(map: Map<string, number[]>, key: string, idx: number): void {
  const list = map.get(key);
  if (list) list.push(idx);
  else map.set(key, [idx]);
}

function stripPort(host: string): string {
  if (host.startsWith("[")) return host.slice(1, host.indexOf("]") > 0 ? host.indexOf("]") : undefined);
  const colon = host.lastIndexOf(":");
  return colon > 0 && host.indexOf(":") === colon ? host.slice(0, colon) : host;
}

/** FNV-1a of the text, mapped to [0, 1): a deterministic coin per rule and flow (probability rules, message loss). */
export function draw(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) / 0x100000000;
}
