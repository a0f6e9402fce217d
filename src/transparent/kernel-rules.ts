// Kernel-level rules in transparent mode. The interceptor accepts a TCP connection before it
// can judge it (TPROXY completes the handshake), so rules on addresses, ports and transport
// protocols are also applied by nftables, before TPROXY: a dropped SYN times out and a reset
// is a real RST, as on a censored network. The censor's chains are rebuilt (atomically, one
// `nft -f`) whenever lab time crosses a rule's period or window edge.
import type { Policy } from "../policy/engine.js";
import type { Rule } from "../profile/model.js";
import type { LabClock } from "../clock/clock.js";
import type { Link } from "./topology.js";
import { sh } from "./topology.js";

/** The chain of a link's network in the censor's table. */
export const netChain = (i: number): string => `net_${i}`;

/** nft statements for one rule, or undefined when its matchers are not the kernel's to judge. */
export function kernelStatements(rule: Rule): string[] | undefined {
  const m = rule.match;
  const kinds = Object.entries(m).filter(([, v]) => v !== undefined).map(([k]) => k);
  if (kinds.some((k) => !["ip", "port", "protocol", "all"].includes(k))) return undefined;
  let l4: string[] = [];
  let dnsOnly = false;
  for (const p of m.protocol ?? []) {
    if (p === "tcp" || p === "udp") l4.push(p);
    else if (p === "dns") { dnsOnly = true; l4 = ["udp", "tcp"]; }
    else return undefined; // tls, http...: the interceptor's
  }
  const verdict = rule.action.type === "allow" ? ["accept"]
    : rule.action.type === "rst" ? ["meta l4proto tcp reject with tcp reset", "drop"]
    : ["drop", "shutdown", "outage"].includes(rule.action.type) ? ["drop"]
    : ["accept"]; // throttle, mitm, blockpage...: matched here, acted on by the interceptor
  const ports = [...(m.port ?? []).map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)), ...(dnsOnly ? ["53"] : [])];
  const proto = l4.length ? `meta l4proto { ${[...new Set(l4)].join(", ")} } ` : ports.length ? "meta l4proto { tcp, udp } " : "";
  const port = ports.length ? `th dport { ${ports.join(", ")} } ` : "";
  const v4 = (m.ip ?? []).filter((a) => !a.includes(":"));
  const v6 = (m.ip ?? []).filter((a) => a.includes(":"));
  const out: string[] = [];
  const emit = (addr: string): void => { for (const v of verdict) out.push(`${addr}${proto}${port}${v}`.replace(/\s+/g, " ").trim()); };
  if (m.ip) {
    if (v4.length) emit(`ip daddr { ${v4.join(", ")} } `);
    if (v6.length) emit(`ip6 daddr { ${v6.join(", ")} } `);
  } else {
    emit("");
  }
  return out;
}

/** The ruleset text that replaces every network chain with the rules in force at `t`. */
export function kernelRuleset(policy: Policy, links: Link[], t: number): string {
  const lines: string[] = [];
  links.forEach((l, i) => {
    lines.push(`flush chain inet chokepoint ${netChain(i)}`);
    const stmts = policy.rulesInForce(t, l.network).flatMap((r) => (kernelStatements(r) ?? []).map((s) => `${s} comment "${r.profile}/${r.id}"`));
    for (const s of stmts) lines.push(`add rule inet chokepoint ${netChain(i)} ${s}`);
  });
  return `${lines.join("\n")}\n`;
}

/** Keeps the censor's network chains in step with lab time. */
export class KernelRules {
  private timer: NodeJS.Timeout | undefined;
  private last = "";
  applied = 0;
  private readonly onClock = (): void => { void this.apply(); };

  constructor(private readonly policy: Policy, private readonly clock: LabClock, private readonly links: Link[]) {}

  async start(): Promise<void> {
    this.clock.on("change", this.onClock);
    await this.apply();
  }

  async apply(): Promise<void> {
    clearTimeout(this.timer);
    const now = this.clock.now();
    const text = kernelRuleset(this.policy, this.links, now);
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

  stop(): void {
    clearTimeout(this.timer);
    this.clock.off("change", this.onClock);
  }
}
