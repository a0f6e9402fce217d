// The checks of a profile that a schema cannot express (dates, time zones, duplicate ids,
// seed references, networks, list files, names, addresses, fingerprints), each reported
// with its position. They run over the raw data, defensively, even when the schema failed,
// so that one run reports every mistake.
import { accessSync, constants } from "node:fs";
import { dirname, resolve } from "node:path";
import { isIP } from "node:net";
import { parseDuration } from "../util/duration.js";
import { isValidTimeZone, parseClockTime, parseInstant } from "../util/time.js";
import { preview, suggest, type PathKey, type YamlSource } from "../util/yaml-source.js";
import type { SeedCatalog } from "../seeds/catalog.js";
import { isCidr, normalizeNameEntry } from "./lists.js";
import { FINGERPRINT_NAMES, isFingerprint } from "./vocabulary.js";
import { LIST_MATCHERS, NAME_MATCHERS } from "./matchers.js";
import { parseUrlMatch } from "./url-match.js";
import { ACTIONS } from "./actions.js";
import type { ActionType } from "./model.js";

export interface CheckOptions {
  seeds?: SeedCatalog;
  variant?: string;
  requireSeeds?: boolean;
}

type Raw = Record<string, unknown>;
export const isObj = (v: unknown): v is Raw => typeof v === "object" && v !== null && !Array.isArray(v);
export const asArray = (v: unknown): unknown[] => (Array.isArray(v) ? v : v === undefined ? [] : [v]);

/** Checks the schema cannot express. Runs on the raw data, defensively, so that one pass reports everything. */
export class Checker {
  /** The profile's time zone, once checked (UTC until then). */
  tz = "UTC";
  private networks = new Set<string>();

  constructor(private readonly src: YamlSource, private readonly opts: CheckOptions) {}

  run(data: unknown): void {
    if (!isObj(data)) {
      this.src.error([], "a profile is a YAML map (id, title, country, timezone, period, networks, rules, ...)");
      return;
    }
    if (typeof data.timezone === "string") {
      if (isValidTimeZone(data.timezone)) this.tz = data.timezone;
      else this.src.error(["timezone"], `unknown time zone "${data.timezone}" (use an IANA name such as Asia/Almaty, or an offset such as +06:00)`);
    }
    for (const n of asArray(data.networks)) if (typeof n === "string") this.networks.add(n);
    if (isObj(data.period)) {
      const start = this.instant(data.period.start, ["period", "start"], this.tz);
      const end = this.instant(data.period.end, ["period", "end"], this.tz);
      if (start !== undefined && end !== undefined && end < start) this.src.error(["period", "end"], "period ends before it starts");
    }
    asArray(data.sources).forEach((s, i) => this.seedRef(s, ["sources", i]));
    const baseIds = this.rules(data.rules, ["rules"]);
    if (isObj(data.variants)) {
      for (const [name, v] of Object.entries(data.variants)) {
        if (!isObj(v)) continue;
        this.rules(v.rules, ["variants", name, "rules"]);
        asArray(v.disable).forEach((id, i) => {
          if (typeof id === "string" && !baseIds.has(id)) this.src.error(["variants", name, "disable", i], `no base rule "${id}" to disable`);
        });
      }
    }
    const variants = isObj(data.variants) ? Object.keys(data.variants) : [];
    asArray(data.expect).forEach((e, i) => {
      if (!isObj(e)) return;
      this.networkRefs(e.networks, ["expect", i, "networks"]);
      this.instant(e.at, ["expect", i, "at"], this.tz);
      if (typeof e.variant === "string" && !variants.includes(e.variant)) {
        this.src.error(["expect", i, "variant"], `no variant "${e.variant}" in this profile`);
      }
    });
    if (this.opts.variant !== undefined && !variants.includes(this.opts.variant)) {
      this.src.error(["variants"], `profile has no variant "${this.opts.variant}"${variants.length ? ` (it has: ${variants.join(", ")})` : ""}`, true);
    }
    if (isObj(data.world) && isObj(data.world.hosts)) {
      for (const [name, addrs] of Object.entries(data.world.hosts)) {
        if (!normalizeNameEntry(name)) this.src.error(["world", "hosts", name], `not a name pattern: "${name}"`, true);
        asArray(addrs).forEach((a, i) => {
          if (typeof a === "string" && !isIP(a)) this.src.error(["world", "hosts", name, i], `not an IP address: "${a}"`);
        });
      }
    }
  }

  private rules(rules: unknown, path: PathKey[]): Set<string> {
    const ids = new Map<string, number>();
    asArray(rules).forEach((r, i) => {
      if (!isObj(r)) return;
      const at = [...path, i];
      if (typeof r.id === "string") {
        if (ids.has(r.id)) this.src.error([...at, "id"], `duplicate rule id "${r.id}" (first at rule ${ids.get(r.id)! + 1})`);
        else ids.set(r.id, i);
      }
      this.networkRefs(r.networks, [...at, "networks"]);
      if (r.seed !== undefined) this.seedRef(r.seed, [...at, "seed"]);
      else if (this.opts.requireSeeds) this.src.error([...at, "id"], `rule "${String(r.id)}" cites no seed (every rule of a regime profile needs one)`);
      for (const [j, w] of asArray(r.window).entries()) {
        if (isObj(w)) this.window(w, Array.isArray(r.window) ? [...at, "window", j] : [...at, "window"]);
      }
      if (isObj(r.match)) this.match(r.match, [...at, "match"]);
      this.actionFits(r, at);
      if (isObj(r.action)) {
        const spoof = r.action.spoof;
        const addrs = Array.isArray(spoof) ? spoof : isObj(spoof) ? asArray(spoof.addresses) : [];
        const base = Array.isArray(spoof) ? [...at, "action", "spoof"] : [...at, "action", "spoof", "addresses"];
        addrs.forEach((a, k) => {
          if (typeof a === "string" && !isIP(a)) this.src.error([...base, k], `not an IP address: "${a}"`);
        });
      }
    });
    return new Set(ids.keys());
  }

  /** An action only a resolver can enact (nxdomain, spoof, ...) on a rule that matches no DNS query: a mistake, not a silent drop. */
  private actionFits(r: Raw, at: PathKey[]): void {
    const type = typeof r.action === "string" ? r.action : isObj(r.action) ? Object.keys(r.action)[0] : undefined;
    if (type === undefined || !(type in ACTIONS) || !isObj(r.match)) return;
    const m = r.match;
    // The other way round: a rule that matches only DNS queries, with an action the resolver
    // can only answer normally (a page, a throttle, an interception), would do nothing at all.
    const onlyDns = Object.keys(m).every((k) => k === "domain");
    const row = ACTIONS[type as ActionType];
    if (onlyDns && row.dns === "world" && row.blocks !== false && type !== "allow") {
      this.src.error([...at, "action"], `action "${type}" acts on connections, and this rule matches only DNS queries (domain), which the resolver would answer normally: match host or sni, or use nxdomain, spoof or drop for DNS`);
      return;
    }
    if (onlyDns && (type === "throttle" || type === "mitm")) {
      this.src.error([...at, "action"], `action "${type}" acts on connections, and this rule matches only DNS queries (domain): match host or sni instead`);
      return;
    }
    if (!row.dnsOnly) return;
    const dns = m.domain !== undefined || m.all !== undefined || asArray(m.protocol).includes("dns");
    if (!dns) {
      this.src.error([...at, "action"], `action "${type}" is an answer only the resolver can give, and this rule matches no DNS query (${Object.keys(m).join(", ")}): match a domain, or use drop, rst or a blockpage for connections`);
    }
  }

  private window(w: Raw, path: PathKey[]): void {
    let tz = this.tz;
    if (typeof w.timezone === "string") {
      if (isValidTimeZone(w.timezone)) tz = w.timezone;
      else this.src.error([...path, "timezone"], `unknown time zone "${w.timezone}"`);
    }
    const start = this.instant(w.start, [...path, "start"], tz);
    const end = this.instant(w.end, [...path, "end"], tz);
    if (start !== undefined && end !== undefined && end <= start) this.src.error([...path, "end"], "window ends before it starts");
    if (isObj(w.daily)) {
      for (const k of ["from", "to"] as const) {
        const v = w.daily[k];
        if (typeof v === "string" && parseClockTime(v) === undefined) this.src.error([...path, "daily", k], `not a time of day (HH:MM): "${v}"`);
      }
    }
    if (isObj(w.intermittent)) {
      this.instant(w.intermittent.anchor, [...path, "intermittent", "anchor"], tz);
      const on = w.intermittent.on, off = w.intermittent.off;
      if ((typeof on === "string" || typeof on === "number") && !parseDuration(on)) this.src.error([...path, "intermittent", "on"], "the on period must be longer than zero");
      void off;
    }
  }

  private match(m: Raw, path: PathKey[]): void {
    for (const field of LIST_MATCHERS) {
      const v = m[field];
      if (!isObj(v) || typeof v.file !== "string") continue;
      // Readability now, so that it is reported with everything else; contents when resolved.
      try {
        accessSync(resolve(dirname(this.src.file), v.file), constants.R_OK);
      } catch (err) {
        this.src.error([...path, field, "file"], `cannot read list file ${v.file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
      }
    }
    for (const field of NAME_MATCHERS) {
      const v = m[field];
      if (isObj(v)) continue; // a list file: checked when loaded
      asArray(v).forEach((n, i) => {
        if (typeof n === "string" && !normalizeNameEntry(n)) {
          this.src.error(Array.isArray(v) ? [...path, field, i] : [...path, field], `not a name (use "example.org", ".example.org" for it and its subdomains, or "*.example.org"): "${n}"`);
        }
      });
    }
    const ip = m.ip;
    if (!isObj(ip)) {
      asArray(ip).forEach((a, i) => {
        if (typeof a === "string" && !isCidr(a)) this.src.error(Array.isArray(ip) ? [...path, "ip", i] : [...path, "ip"], `not an address or CIDR: "${a}"`);
      });
    }
    asArray(m.url).forEach((u, i) => {
      if (typeof u === "string" && !parseUrlMatch(u)) this.src.error(Array.isArray(m.url) ? [...path, "url", i] : [...path, "url"], `not a URL (host/path): "${u}"`);
    });
    asArray(m.port).forEach((p, i) => {
      if (typeof p === "string") {
        const [lo, hi] = p.split("-").map(Number);
        if (lo! > hi! || hi! > 65535) this.src.error(Array.isArray(m.port) ? [...path, "port", i] : [...path, "port"], `bad port range "${p}"`);
      }
    });
    asArray(m.fingerprint).forEach((f, i) => {
      if (typeof f !== "string") return;
      if (!isFingerprint(f)) {
        const near = suggest(f, FINGERPRINT_NAMES);
        this.src.error(Array.isArray(m.fingerprint) ? [...path, "fingerprint", i] : [...path, "fingerprint"],
          `unknown fingerprint "${f}"${near.length ? ` (did you mean "${near[0]}"?)` : ""}; known: ${FINGERPRINT_NAMES.join(", ")}, ja3:<md5>, ja4:<id>`);
      }
    });
  }

  private networkRefs(v: unknown, path: PathKey[]): void {
    asArray(v).forEach((n, i) => {
      if (typeof n === "string" && n !== "*" && this.networks.size && !this.networks.has(n)) {
        this.src.error([...path, i], `network "${n}" is not among the profile's networks (${[...this.networks].join(", ")})`);
      }
    });
  }

  private seedRef(v: unknown, path: PathKey[]): void {
    const seeds = this.opts.seeds?.seeds;
    if (!seeds || typeof v !== "string" || seeds.has(v)) return;
    const near = suggest(v, seeds.keys());
    this.src.error(path, `no seed "${v}"${near.length ? ` (did you mean "${near[0]}"?)` : ""}`);
  }

  private instant(v: unknown, path: PathKey[], tz: string): number | undefined {
    if (v === undefined) return undefined;
    if (typeof v !== "string") {
      this.src.error(path, `a date must be quoted text such as "2014-02-13T17:00:00+06:00", got ${preview(v)}`);
      return undefined;
    }
    const t = parseInstant(v, tz);
    if (t === undefined) this.src.error(path, `not a date or date-time: "${v}" (expected e.g. 2014-02-13, 2014-02-13T17:00 or 2014-02-13T17:00:00+06:00)`);
    return t;
  }
}
