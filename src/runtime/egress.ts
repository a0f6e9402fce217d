// One egress policy for every way the lab connects out for a client (the interceptor's
// upstream, per-request forwarding; the resolver's upstream is the user's own choice and is
// checked only against the lab's own listeners). The destination is parsed once into its
// canonical form (util/address.ts), so no spelling of an address passes that another would
// not; loopback, unspecified, private, link-local (cloud metadata), multicast, broadcast and
// other special addresses are refused unless the user allows a prefix (--allow-upstream), and
// the lab's own listeners are refused always.
import { addressKind, canonicalAddress, type AddressKind } from "../util/address.js";
import { prefixMatcher } from "../policy/cidr.js";

/** Kinds a client may reach without the user's say-so: public addresses and the lab's own ranges (198.18.0.0/15, 2001:db8::/32). */
const OPEN: ReadonlySet<AddressKind> = new Set(["public", "lab"]);

export interface EgressOptions {
  /** Prefixes the user allows besides public addresses (--allow-upstream CIDR). */
  allow?: string[];
  /** The lab's own listeners (never a destination, whatever is allowed). */
  own: () => { host: string; port: number }[];
  /** The lab's own addresses (transparent mode's censor ends), never a destination. */
  ownAddresses?: ReadonlySet<string>;
}

export class EgressPolicy {
  private readonly allowed: (ip: string) => boolean;
  /** Destinations refused, by kind. */
  readonly refused: Record<string, number> = {};

  constructor(private readonly o: EgressOptions) {
    for (const p of o.allow ?? []) {
      const [a, len] = p.split("/");
      if (!a || !canonicalAddress(a) || (len !== undefined && !/^\d{1,3}$/.test(len))) throw new Error(`--allow-upstream takes an address or CIDR (e.g. 127.0.0.0/8, fd00::/8), got "${p}"`);
    }
    this.allowed = o.allow?.length ? prefixMatcher(o.allow.map((p) => { const [a, len] = p.split("/"); return `${canonicalAddress(a!)}${len !== undefined ? `/${len}` : ""}`; })) : () => false;
  }

  /** Why the lab must not connect to ip:port for a client, or undefined when it may. */
  check(ip: string, port: number): string | undefined {
    const canon = canonicalAddress(ip);
    if (!canon) return this.refuse("invalid", `refusing ${ip}:${port}: not an address`);
    const kind = addressKind(canon)!;
    const own = this.o.own().some((l) => (canonicalAddress(l.host) === canon || l.host === "0.0.0.0" || l.host === "::") && l.port === port);
    if (own || this.o.ownAddresses?.has(canon)) return this.refuse("own", `refusing to connect to ${canon}:${port}: the lab's own listener (loop guard)`);
    if (OPEN.has(kind) || this.allowed(canon)) return undefined;
    return this.refuse(kind, `refusing to connect to ${canon}:${port}: a ${kind} address (allow it with --allow-upstream ${canon}${canon.includes(":") ? "/128" : "/32"})`);
  }

  private refuse(kind: string, why: string): string {
    this.refused[kind] = (this.refused[kind] ?? 0) + 1;
    return why;
  }
}
