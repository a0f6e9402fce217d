// Kernel-level rules in transparent mode. The interceptor accepts a TCP connection before it
// can judge it (TPROXY completes the handshake), so rules on addresses, ports and transport
// protocols are also applied by nftables, before TPROXY: a dropped SYN times out and a reset
// is a real RST, as on a censored network. The censor's chains are rebuilt (atomically, one
// `nft -f`) whenever lab time crosses a rule's period or window edge.
import type { Policy } from "../policy/engine.js";
import type { Rule } from "../profile/model.js";
import { kernelEnactment, type KernelEnactment } from "../profile/actions.js";
import { MATCHERS, matchersOf } from "../profile/matchers.js";
import type { LabClock } from "../clock/clock.js";
import type { Link } from "./topology.js";
import { sh } from "./topology.js";

/** The chain of a link's network in the censor's table. */
export const netChain = (i: number): string => `net_${i}`;

/** nft verdicts per kernel enactment (profile/actions.ts); "accept" also lets the interceptor act on what it matched (throttle, mitm...). */
const VERDICTS: Record<KernelEnactment, string[]> = {
  accept: ["accept"],
  drop: ["drop"],
  reset: ["meta l4proto tcp reject with tcp reset", "drop"],
};

/** One nft statement: what it matches (with its address family, if any) and its verdict. */
interface Part { match: string; family?: "ip" | "ip6"; verdict: string }

function kernelParts(rule: Rule): Part[] | undefined {
  const m = rule.match;
  if (matchersOf(m).some((k) => !MATCHERS[k].kernel)) return undefined;
  let l4: string[] = [];
  let dnsOnly = false;
  for (const p of m.protocol ?? []) {
    if (p === "tcp" || p === "udp") l4.push(p);
    else if (p === "dns") { dnsOnly = true; l4 = ["udp", "tcp"]; }
    else return undefined; // tls, http...: the interceptor's
  }
  const verdict = VERDICTS[kernelEnactment(rule.action)];
  const ports = [...(m.port ?? []).map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)), ...(dnsOnly ? ["53"] : [])];
  const proto = l4.length ? `meta l4proto { ${[...new Set(l4)].join(", ")} } ` : ports.length ? "meta l4proto { tcp, udp } " : "";
  const port = ports.length ? `th dport { ${ports.join(", ")} } ` : "";
  const v4 = (m.ip ?? []).filter((a) => !a.includes(":"));
  const v6 = (m.ip ?? []).filter((a) => a.includes(":"));
  const out: Part[] = [];
  const emit = (addr: string, family?: "ip" | "ip6"): void => {
    for (const v of verdict) out.push({ match: `${addr}${proto}${port}`.replace(/\s+/g, " ").trim(), ...(family ? { family } : {}), verdict: v });
  };
  if (m.ip) {
    if (v4.length) emit(`ip daddr { ${v4.join(", ")} } `, "ip");
    if (v6.length) emit(`ip6 daddr { ${v6.join(", ")} } `, "ip6");
  } else {
    emit("");
  }
  return out;
}

const join = (...words: string[]): string => words.filter(Boolean).join(" ");

/** nft statements for one rule, or undefined when its matchers are not the kernel's to judge. */
export function kernelStatements(rule: Rule): string[] | undefined {
  return kernelParts(rule)?.map((p) => join(p.match, p.verdict));
}

/** How long a blocked client/destination pair stays in a hit set (one event per pair and period). */
export const HIT_TIMEOUT_S = 30;

/**
 * The hit set of a blocking rule on a network and family: the kernel adds each blocked
 * client/destination pair to it, and KernelRules turns new pairs into events (the kernel
 * blocks where the interceptor never sees a flow, yet the ground truth must say so).
 */
export interface HitSet { name: string; family: "ip" | "ip6"; network: string; rule: Rule }

/** Names hit sets stably across rebuilds (a set keeps its name while its rule is in force again). */
export class HitSets {
  private readonly ids = new Map<string, number>();
  readonly byName = new Map<string, HitSet>();

  set(linkIndex: number, network: string, rule: Rule, family: "ip" | "ip6"): HitSet {
    const key = `${linkIndex}/${rule.profile}/${rule.id}`;
    let id = this.ids.get(key);
    if (id === undefined) this.ids.set(key, (id = this.ids.size));
    const name = `hit_${id}_${family === "ip" ? 4 : 6}`;
    const h = { name, family, network, rule };
    this.byName.set(name, h);
    return h;
  }
}

/** The ruleset text that replaces every network chain with the rules in force at `t`. */
export function kernelRuleset(policy: Policy, links: Link[], t: number, hits?: HitSets): string {
  const sets: string[] = [];
  const lines: string[] = [];
  links.forEach((l, i) => {
    lines.push(`flush chain inet chokepoint ${netChain(i)}`);
    for (const r of policy.rulesInForce(t, l.network)) {
      for (const p of kernelParts(r) ?? []) {
        const comment = `comment "${r.profile}/${r.id}"`;
        if (!hits || p.verdict === "accept") {
          lines.push(`add rule inet chokepoint ${netChain(i)} ${join(p.match, p.verdict, comment)}`);
          continue;
        }
        // A blocking statement records the pair first; without an address match it is split
        // by family, since `ip saddr` alone would restrict it to IPv4.
        for (const family of p.family ? [p.family] : (["ip", "ip6"] as const)) {
          const h = hits.set(i, l.network, r, family);
          const type = family === "ip" ? "ipv4_addr . ipv4_addr" : "ipv6_addr . ipv6_addr";
          sets.push(`add set inet chokepoint ${h.name} { type ${type}; flags dynamic, timeout; timeout ${HIT_TIMEOUT_S}s; }`);
          const only = p.family ? "" : `meta nfproto ${family === "ip" ? "ipv4" : "ipv6"}`;
          lines.push(`add rule inet chokepoint ${netChain(i)} ${join(only, p.match, `update @${h.name} { ${family} saddr . ${family} daddr }`, p.verdict, comment)}`);
        }
      }
    }
  });
  return `${[...new Set(sets), ...lines].join("\n")}\n`;
}

/** A kernel block as the event log records it. */
export interface KernelHit { network: string; client: string; ip: string; rule: Rule }

/** The pairs in the hit sets of `nft -j list table inet chokepoint` output. */
export function parseHits(json: string, sets: HitSets): { set: HitSet; client: string; ip: string }[] {
  const out: { set: HitSet; client: string; ip: string }[] = [];
  const doc = JSON.parse(json) as { nftables?: { set?: { name: string; elem?: { elem?: { val?: { concat?: string[] } }; concat?: string[] }[] } }[] };
  for (const item of doc.nftables ?? []) {
    const h = item.set && sets.byName.get(item.set.name);
    if (!h) continue;
    for (const e of item.set!.elem ?? []) {
      const pair = e.elem?.val?.concat ?? e.concat;
      if (pair?.length === 2) out.push({ set: h, client: pair[0]!, ip: pair[1]! });
    }
  }
  return out;
}

/** Keeps the censor's network chains in step with lab time, and reports what the kernel blocked. */
export class KernelRules {
  private timer: NodeJS.Timeout | undefined;
  private poller: NodeJS.Timeout | undefined;
  private last = "";
  applied = 0;
  /** Blocked pairs seen in the hit sets (reported once each while they stay there). */
  private seen = new Set<string>();
  private readonly hits: HitSets | undefined;
  private readonly onClock = (): void => { void this.apply(); };

  constructor(
    private policy: Policy,
    private readonly clock: LabClock,
    private readonly links: Link[],
    /** Called for each client/destination pair a kernel rule newly blocked (polled every second). */
    private readonly onHit?: (hit: KernelHit) => void,
  ) {
    if (onHit) this.hits = new HitSets();
  }

  /** Profiles changed at run time: the next apply() uses these rules. */
  setPolicy(policy: Policy): void {
    this.policy = policy;
  }

  async start(): Promise<void> {
    this.clock.on("change", this.onClock);
    await this.apply();
    if (this.onHit) this.poller = setInterval(() => void this.poll().catch(() => undefined), 1000).unref();
  }

  async apply(): Promise<void> {
    clearTimeout(this.timer);
    const now = this.clock.now();
    const text = kernelRuleset(this.policy, this.links, now, this.hits);
    if (text !== this.last) {
      await sh("nft", ["-f", "-"], text);
      this.last = text;
      this.applied++;
    }
    const edge = this.policy.stableUntil(now);
    if (Number.isFinite(edge)) {
      // Timers cap at about 24.8 days; a later edge is looked at again then.
      const delay = Math.min(Math.max(1, this.clock.realDelayUntil(edge)), 2 ** 31 - 1);
      if (Number.isFinite(delay)) this.timer = setTimeout(() => void this.apply().catch(() => undefined), delay).unref();
    }
  }

  /** Reads the hit sets; a pair not seen at the last look is a new block. */
  async poll(): Promise<void> {
    if (!this.hits || !this.onHit) return;
    const now = new Set<string>();
    for (const h of parseHits(await sh("nft", ["-j", "list", "table", "inet", "chokepoint"]), this.hits)) {
      const key = `${h.set.name} ${h.client} ${h.ip}`;
      now.add(key);
      if (!this.seen.has(key)) this.onHit({ network: h.set.network, client: h.client, ip: h.ip, rule: h.set.rule });
    }
    this.seen = now;
  }

  stop(): void {
    clearTimeout(this.timer);
    clearInterval(this.poller);
    this.clock.off("change", this.onClock);
  }
}
