// The matchers a rule may use, declared once: the schema (schema.ts), the loader's list
// files, the policy engine's indexes (one bit each), the kernel rules (which a kernel can
// judge) and the descriptions are driven from this table. `Match` (model.ts) must have
// exactly these keys; the check below fails to compile otherwise.
import type { Match } from "./model.js";

export interface MatcherSpec {
  /** What it reads, for `show`, the live view and the docs. */
  what: string;
  /** Entries may come from a list file: names or addresses. */
  list?: "name" | "ip";
  /** A kernel can judge it (transparent and gateway modes: nft rules before any payload). */
  kernel: boolean;
}

export const MATCHERS = {
  domain: { what: "DNS name", list: "name", kernel: false },
  host: { what: "HTTP Host", list: "name", kernel: false },
  sni: { what: "TLS SNI", list: "name", kernel: false },
  url: { what: "URL", kernel: false },
  keyword: { what: "bytes", kernel: false },
  ip: { what: "address", list: "ip", kernel: true },
  port: { what: "port", kernel: true },
  protocol: { what: "protocol", kernel: true },
  fingerprint: { what: "fingerprint", kernel: false },
  service: { what: "service", kernel: false },
  all: { what: "all traffic", kernel: true },
} as const satisfies Record<keyof Match, MatcherSpec>;

export type MatcherName = keyof typeof MATCHERS;
export const MATCHER_NAMES = Object.keys(MATCHERS) as MatcherName[];
/** Matchers whose entries may come from a list file. */
export const LIST_MATCHERS = MATCHER_NAMES.filter((m): m is "domain" | "host" | "sni" | "ip" => "list" in MATCHERS[m]);
/** Matchers of DNS names, HTTP hosts and SNI (name notation). */
export const NAME_MATCHERS = LIST_MATCHERS.filter((m): m is "domain" | "host" | "sni" => MATCHERS[m].list === "name");

// Both ways: every key of Match is declared above, and nothing else is.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : never) : never;
const _sameKeys: Same<MatcherName, keyof Match> = true;
void _sameKeys;

/** The matchers a rule uses. */
export function matchersOf(m: Match): MatcherName[] {
  return MATCHER_NAMES.filter((k) => m[k] !== undefined);
}
