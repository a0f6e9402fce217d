// The lab world: who answers behind the censor. Every name resolves deterministically, to
// an address derived from the name in 198.19.0.0/16 and 2001:db8:19::/48, unless the world
// pins it (world/*.yaml, a profile's `world:` section). Names under .invalid, and names the
// world lists as nonexistent, do not exist.
import { isIP } from "node:net";
import { canonicalName } from "../policy/names.js";
import { prefixMatcher } from "../policy/cidr.js";
import { canonicalAddress } from "../util/address.js";
import type { WorldData } from "./data.js";

export type RecordType = "A" | "AAAA";
export interface WorldAnswer {
  readonly rcode: "NOERROR" | "NXDOMAIN";
  readonly answers: readonly { type: RecordType; address: string; ttl: number }[];
}

export const WORLD_V4 = "198.19.0.0/16";
export const WORLD_V6 = "2001:db8:19::/48";
const TTL = 300;
const inWorldPrefix = prefixMatcher([WORLD_V4, WORLD_V6]);
/** Usable host addresses in 198.19.0.0/16 (last octet 1-254). */
const V4_SLOTS = 256 * 254;


/** Pattern tables in name notation, looked up most specific first. */
class PatternTable<T> {
  private readonly exact = new Map<string, T>();
  private readonly suffix = new Map<string, T>();
  private readonly wildcard = new Map<string, T>();
  constructor(entries: Record<string, T> | [string, T][]) {
    for (const [pattern, value] of Array.isArray(entries) ? entries : Object.entries(entries)) {
      const p = pattern.trim().toLowerCase();
      if (p.startsWith("*.")) this.wildcard.set(p.slice(2), value);
      else if (p.startsWith(".")) this.suffix.set(p.slice(1), value);
      else this.exact.set(p, value);
    }
  }
  get(name: string): T | undefined {
    const e = this.exact.get(name);
    if (e !== undefined) return e;
    const s = this.suffix.get(name);
    if (s !== undefined) return s;
    for (let dot = name.indexOf("."); dot >= 0; dot = name.indexOf(".", dot + 1)) {
      const parent = name.slice(dot + 1);
      const v = this.wildcard.get(parent) ?? this.suffix.get(parent);
      if (v !== undefined) return v;
    }
    return undefined;
  }
}

export class World {
  readonly mode: "lab" | "internet";
  private readonly pins: PatternTable<string[]>;
  private readonly gone: PatternTable<true>;
  private readonly certKinds: PatternTable<string>;
  /** Derived IPv4 slots given to the names the world knows of, so that those never collide. */
  private readonly reserved = new Map<number, string>();
  private readonly assigned = new Map<string, number>();

  /** Service by name pattern, and chat endpoints (name -> service) with their ports. */
  private readonly serviceNames: PatternTable<string>;
  private readonly chatNames: PatternTable<string>;
  private readonly serviceIps = new Map<string, string>();
  private readonly chatIps = new Map<string, string>();
  private readonly chatPorts = new Map<string, { tcp: Set<number>; udp: Set<number> }>();

  /** What this world was built from (to build the same world in another thread). */
  readonly spec: { data: WorldData; knownNames: string[] };

  constructor(data: WorldData, opts: { mode?: "lab" | "internet"; knownNames?: Iterable<string> } = {}) {
    this.mode = opts.mode ?? "lab";
    this.spec = { data, knownNames: [...(opts.knownNames ?? [])] };
    this.pins = new PatternTable(data.hosts);
    this.gone = new PatternTable(data.nonexistent.map((n) => [n, true] as [string, true]));
    this.certKinds = new PatternTable(data.certs);
    // Known names take their slots in sorted order, probing past taken ones: deterministic
    // for a given set of profiles, and collision-free among them.
    const services = Object.entries(data.services ?? {});
    this.serviceNames = new PatternTable(services.flatMap(([svc, spec]) => spec.names.map((n) => [n, svc] as [string, string])));
    this.chatNames = new PatternTable(services.flatMap(([svc, spec]) => (spec.chat?.names ?? []).map((n) => [n, svc] as [string, string])));
    for (const [svc, spec] of services) this.chatPorts.set(svc, { tcp: new Set(spec.chat?.tcp ?? []), udp: new Set(spec.chat?.udp ?? []) });
    const known = [...new Set(this.spec.knownNames.map((n) => canonicalName(n.replace(/^\*?\./, ""))))].sort();
    for (const name of known) {
      if (this.pins.get(name)) continue;
      const slot = this.probe(name);
      this.reserved.set(slot, name);
      this.assigned.set(name, slot);
    }
  }

  /** Addresses of service names, so that a connection by address alone still names its service (exact names and pinned patterns). */
  private indexServiceAddresses(): void {
    if (this.serviceIps.size || this.chatIps.size) return;
    for (const [svc, spec] of Object.entries(this.spec.data.services ?? {})) {
      const put = (map: Map<string, string>, pattern: string): void => {
        const base = canonicalName(pattern.replace(/^\*?\./, ""));
        if (pattern !== base && !this.pins.get(base)) return; // an unpinned pattern has no fixed address
        const a = this.addresses(base);
        for (const ip of [...a.v4, ...a.v6]) if (!map.has(ip)) map.set(ip, svc);
      };
      spec.names.forEach((n) => put(this.serviceIps, n));
      spec.chat?.names.forEach((n) => put(this.chatIps, n));
    }
  }

  /** The messaging service a destination belongs to (by name when known, else by address). */
  serviceOf(dst: { host?: string; ip: string }): string | undefined {
    this.indexServiceAddresses();
    const name = dst.host && !isIP(dst.host) ? canonicalName(dst.host) : undefined;
    return (name ? this.serviceNames.get(name) ?? this.chatNames.get(name) : undefined) ?? this.serviceIps.get(dst.ip) ?? this.chatIps.get(dst.ip);
  }

  /** The service whose chat endpoint `dst` is on this port (its connections go to the relay). */
  chatEndpoint(dst: { host?: string; ip: string }, port: number, transport: "tcp" | "udp" = "tcp"): string | undefined {
    this.indexServiceAddresses();
    const svc = (dst.host && !isIP(dst.host) ? this.chatNames.get(canonicalName(dst.host)) : undefined) ?? this.chatIps.get(dst.ip);
    return svc && this.chatPorts.get(svc)?.[transport].has(port) ? svc : undefined;
  }

  private probe(name: string): number {
    for (let i = 0; ; i++) {
      const slot = hash32(i === 0 ? name : `${name}#${i}`, 0x811c9dc5) % V4_SLOTS;
      const owner = this.reserved.get(slot);
      if (owner === undefined || owner === name) return slot;
    }
  }

  exists(name: string): boolean {
    const n = canonicalName(name);
    return !(n === "invalid" || n.endsWith(".invalid") || this.gone.get(n));
  }

  private pinned: Set<string> | undefined;

  /** Whether `ip` is an address of this world: a derived one (WORLD_V4, WORLD_V6) or one a profile pins a name to. */
  hasAddress(ip: string): boolean {
    this.pinned ??= new Set(Object.values(this.spec.data.hosts).flat().map((a) => canonicalAddress(a) ?? a));
    return inWorldPrefix(ip) || this.pinned.has(canonicalAddress(ip) ?? ip);
  }

  private readonly cache = new Map<string, { v4: string[]; v6: string[] }>();

  /** The world's addresses for `name` (both families). */
  addresses(name: string): { v4: string[]; v6: string[] } {
    const n = canonicalName(name);
    const hit = this.cache.get(n);
    if (hit) return hit;
    const a = this.compute(n);
    if (this.cache.size >= 100_000) this.cache.clear();
    this.cache.set(n, a);
    return a;
  }

  private compute(n: string): { v4: string[]; v6: string[] } {
    if (isIP(n)) return isIP(n) === 4 ? { v4: [n], v6: [] } : { v4: [], v6: [n] };
    const pin = this.pins.get(n);
    if (pin) return { v4: pin.filter((a) => isIP(a) === 4), v6: pin.filter((a) => isIP(a) === 6) };
    const slot = this.assigned.get(n) ?? this.probe(n);
    const v4 = `198.19.${Math.floor(slot / 254)}.${(slot % 254) + 1}`;
    const a = hash32(n, 0x9e3779b9), b = hash32(n, 0x85ebca6b), c = hash32(n, 0xc2b2ae35);
    const g = (x: number): string => (x & 0xffff).toString(16);
    return { v4: [v4], v6: [`2001:db8:19:${g(a >>> 16)}:${g(a)}:${g(b >>> 16)}:${g(b)}:${g(c >>> 16)}`] };
  }

  private readonly answers = new Map<string, WorldAnswer>();

  /**
   * Answers a query of type `qtype` (A, AAAA, ANY; other types: NOERROR with no data).
   * Answers are cached and frozen: callers must not change them.
   */
  answer(name: string, qtype: string): WorldAnswer {
    const key = `${qtype}|${name}`;
    const hit = this.answers.get(key);
    if (hit) return hit;
    let out: WorldAnswer;
    if (!this.exists(name)) out = { rcode: "NXDOMAIN", answers: [] };
    else {
      const { v4, v6 } = this.addresses(name);
      const answers: { type: RecordType; address: string; ttl: number }[] = [];
      if (qtype === "A" || qtype === "ANY") for (const a of v4) answers.push({ type: "A", address: a, ttl: TTL });
      if (qtype === "AAAA" || qtype === "ANY") for (const a of v6) answers.push({ type: "AAAA", address: a, ttl: TTL });
      out = { rcode: "NOERROR", answers };
    }
    Object.freeze(out.answers);
    if (this.answers.size >= 100_000) this.answers.clear();
    this.answers.set(key, Object.freeze(out));
    return out;
  }

  /** Which certificate the origin presents for `name`. */
  certKind(name: string): string {
    return this.certKinds.get(canonicalName(name)) ?? "valid";
  }
}

/**
 * A 32-bit hash of a name (FNV-1a with a murmur3 finaliser). Not cryptographic: it only has
 * to spread names evenly and give the same value on every machine, and it is ~10x cheaper
 * than SHA-256 on the resolver's path.
 */
export function hash32(text: string, seed: number): number {
  let h = seed | 0;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
