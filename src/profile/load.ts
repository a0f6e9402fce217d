// Loads a profile file: YAML -> schema -> semantic checks (positions for every problem) ->
// the resolved model (variant applied, list files loaded). I/O lives here, not in the policy.
import { accessSync, constants } from "node:fs";
import { dirname, resolve } from "node:path";
import { isIP } from "node:net";
import { parseDuration } from "../util/duration.js";
import { isValidTimeZone, parseClockTime, parseInstant } from "../util/time.js";
import { YamlSource, preview, suggest, type PathKey, type SourceError } from "../util/yaml-source.js";
import type { SeedCatalog } from "../seeds/catalog.js";
import { describeActionProblem, toAction } from "./actions.js";
import { isCidr, loadList, normalizeName, normalizeNameEntry, type Progress } from "./lists.js";
import { DAYS, FINGERPRINT_NAMES, ProfileSchema, type ProfileDoc, type RuleDoc, type WindowDoc } from "./schema.js";
import { DEFAULT_DPI, type Match, type Profile, type Rule, type Window } from "./model.js";

export interface LoadOptions {
  /** Seeds that rules and sources may cite; when given, dangling references are errors. */
  seeds?: SeedCatalog;
  /** Resolve the rules of this variant (an error if the profile has no such variant). */
  variant?: string;
  /** Require a seed on every rule (the project's own regime profiles). */
  requireSeeds?: boolean;
  onProgress?: (what: string, done: number, total: number) => void;
}

export interface LoadResult { profile?: Profile; errors: SourceError[] }

type Raw = Record<string, unknown>;
const isObj = (v: unknown): v is Raw => typeof v === "object" && v !== null && !Array.isArray(v);
const asArray = (v: unknown): unknown[] => (Array.isArray(v) ? v : v === undefined ? [] : [v]);

export function loadProfile(file: string, opts: LoadOptions = {}): LoadResult {
  const src = new YamlSource(file);
  if (src.errors.length) return { errors: src.errors };
  const doc = src.check(ProfileSchema, (issue, value) => {
    const last = issue.path[issue.path.length - 1];
    if (last === "action" && issue.code === "invalid_union") return describeActionProblem(value);
    return undefined;
  });
  const checker = new Checker(src, opts);
  checker.run(src.data);
  if (src.errors.length || !doc) return { errors: sortErrors(src.errors) };
  const profile = checker.resolve(doc);
  return src.errors.length || !profile ? { errors: sortErrors(src.errors) } : { profile, errors: [] };
}

function sortErrors(errors: SourceError[]): SourceError[] {
  return [...errors].sort((a, b) => (a.file === b.file ? a.line - b.line || a.col - b.col : a.file < b.file ? -1 : 1));
}

/** Checks the schema cannot express. Runs on the raw data, defensively, so that one pass reports everything. */
class Checker {
  private tz = "UTC";
  private networks = new Set<string>();
  private listCache = new Map<string, string[] | undefined>();

  constructor(private readonly src: YamlSource, private readonly opts: LoadOptions) {}

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
    for (const field of ["domain", "host", "sni", "ip"] as const) {
      const v = m[field];
      if (!isObj(v) || typeof v.file !== "string") continue;
      // Readability now, so that it is reported with everything else; contents when resolved.
      try {
        accessSync(resolve(dirname(this.src.file), v.file), constants.R_OK);
      } catch (err) {
        this.src.error([...path, field, "file"], `cannot read list file ${v.file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
      }
    }
    for (const field of ["domain", "host", "sni"] as const) {
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
      const ok = (FINGERPRINT_NAMES as readonly string[]).includes(f) || /^ja3:[0-9a-f]{32}$/.test(f) || /^ja4:[a-z0-9_]+$/i.test(f);
      if (!ok) {
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

  // ---- resolution (only reached when everything above passed) ----

  resolve(doc: ProfileDoc): Profile | undefined {
    const variant = this.opts.variant;
    let ruleDocs: { doc: RuleDoc; path: PathKey[] }[] = doc.rules.map((r, i) => ({ doc: r, path: ["rules", i] }));
    if (variant !== undefined && doc.variants?.[variant]) {
      const v = doc.variants[variant];
      const disabled = new Set(v.disable ?? []);
      ruleDocs = ruleDocs.filter((r) => !disabled.has(r.doc.id));
      (v.rules ?? []).forEach((r, i) => {
        const at = ruleDocs.findIndex((b) => b.doc.id === r.id);
        const entry = { doc: r, path: ["variants", variant, "rules", i] as PathKey[] };
        if (at >= 0) ruleDocs[at] = entry;
        else ruleDocs.push(entry);
      });
    }
    const rules = ruleDocs.map(({ doc: r, path }) => this.rule(doc, r, path));
    const dpi = doc.dpi ?? {};
    const profile: Profile = {
      id: doc.id,
      title: doc.title,
      country: doc.country,
      timezone: doc.timezone,
      period: { start: parseInstant(doc.period.start, this.tz)!, ...(doc.period.end ? { end: parseInstant(doc.period.end, this.tz)! } : {}) },
      networks: doc.networks,
      sources: doc.sources ?? [],
      kind: doc.kind ?? "event",
      dpi: {
        inspect: dpi.inspect ?? DEFAULT_DPI.inspect,
        reassembleBytes: dpi.reassembleBytes ?? DEFAULT_DPI.reassembleBytes,
        reassembleTimeoutMs: dpi.reassembleTimeout !== undefined ? parseDuration(dpi.reassembleTimeout)! : DEFAULT_DPI.reassembleTimeoutMs,
        hostCase: dpi.hostCase ?? DEFAULT_DPI.hostCase,
        direction: dpi.direction ?? DEFAULT_DPI.direction,
      },
      world: { hosts: doc.world?.hosts ?? {}, nonexistent: doc.world?.nonexistent ?? [], certs: doc.world?.certs ?? {} },
      rules: rules.filter((r): r is Rule => r !== undefined),
      variants: Object.fromEntries(Object.entries(doc.variants ?? {}).map(([k, v]) => [k, {
        ...(v.description ? { description: v.description } : {}), ...(v.confidence ? { confidence: v.confidence } : {}),
      }])),
      expect: (doc.expect ?? []).map((e) => ({
        target: e.target, observe: e.observe,
        ...(e.networks ? { networks: e.networks } : {}),
        ...(e.at ? { at: parseInstant(e.at, this.tz)! } : {}),
        ...(e.variant ? { variant: e.variant } : {}),
        ...(e.note ? { note: e.note } : {}),
      })),
      file: this.src.file,
    };
    if (doc.description) profile.description = doc.description;
    if (doc.confidence) profile.confidence = doc.confidence;
    if (variant !== undefined) profile.variant = variant;
    return profile;
  }

  private rule(profile: ProfileDoc, r: RuleDoc, path: PathKey[]): Rule | undefined {
    const match = this.resolveMatch(r.match, [...path, "match"]);
    if (!match) return undefined;
    const rule: Rule = {
      id: r.id,
      profile: profile.id,
      match,
      action: toAction(r.action),
      networks: r.networks ?? profile.networks,
    };
    if (r.description) rule.description = r.description;
    if (r.window) rule.windows = asArray(r.window).map((w) => this.resolveWindow(w as WindowDoc, profile));
    if (r.seed) rule.seed = r.seed;
    if (r.confidence) rule.confidence = r.confidence;
    if (r.probability !== undefined) rule.probability = r.probability;
    if (r.residual) rule.residual = { ms: r.residual.seconds * 1000, key: r.residual.key ?? "3-tuple", renew: r.residual.renew ?? false };
    return rule;
  }

  private resolveWindow(w: WindowDoc, profile: ProfileDoc): Window {
    const tz = w.timezone ?? this.tz;
    const out: Window = { timezone: tz };
    if (w.start) out.start = parseInstant(w.start, tz)!;
    if (w.end) out.end = parseInstant(w.end, tz)!;
    if (w.daily) {
      out.daily = { fromMs: parseClockTime(w.daily.from)!, toMs: parseClockTime(w.daily.to)! };
      if (w.daily.days) out.daily.days = w.daily.days.map((d) => (DAYS.indexOf(d) + 1) % 7);
    }
    if (w.intermittent) {
      const anchor = w.intermittent.anchor ?? w.start ?? profile.period.start;
      out.intermittent = { onMs: parseDuration(w.intermittent.on)!, offMs: parseDuration(w.intermittent.off)!, anchor: parseInstant(anchor, tz)! };
    }
    if (w.relative) {
      out.relative = { afterMs: w.relative.after !== undefined ? parseDuration(w.relative.after)! : 0 };
      if (w.relative.for !== undefined) out.relative.forMs = parseDuration(w.relative.for)!;
    }
    return out;
  }

  private resolveMatch(m: RuleDoc["match"], path: PathKey[]): Match | undefined {
    const out: Match = {};
    let ok = true;
    for (const field of ["domain", "host", "sni", "ip"] as const) {
      const v = m[field];
      if (v === undefined) continue;
      if (isObj(v)) {
        const entries = this.list(v as { file: string; format?: "plain" | "csv" | "rpz"; mode?: "exact" | "suffix" }, field === "ip" ? "ip" : "name", [...path, field]);
        if (!entries) ok = false;
        else out[field] = entries;
      } else {
        out[field] = asArray(v).map((n) => (field === "ip" ? String(n).trim() : normalizeNameEntry(String(n))!));
      }
    }
    if (m.url) out.url = asArray(m.url).map((u) => parseUrlMatch(String(u))!);
    if (m.keyword) {
      out.keyword = typeof m.keyword === "object" && !Array.isArray(m.keyword)
        ? { patterns: m.keyword.any, ignoreCase: m.keyword.ignoreCase ?? false }
        : { patterns: asArray(m.keyword) as string[], ignoreCase: false };
    }
    if (m.port !== undefined) {
      out.port = asArray(m.port).map((p) => {
        if (typeof p === "number") return [p, p] as [number, number];
        const [lo, hi] = String(p).split("-").map(Number);
        return [lo!, hi!] as [number, number];
      });
    }
    if (m.protocol) out.protocol = asArray(m.protocol) as string[];
    if (m.fingerprint) out.fingerprint = asArray(m.fingerprint) as string[];
    if (m.service) out.service = asArray(m.service) as string[];
    if (m.all) out.all = true;
    return ok ? out : undefined;
  }

  private list(spec: { file: string; format?: "plain" | "csv" | "rpz"; mode?: "exact" | "suffix" }, kind: "name" | "ip", path: PathKey[]): string[] | undefined {
    const file = resolve(dirname(this.src.file), spec.file);
    const key = `${kind}|${spec.format ?? ""}|${spec.mode ?? ""}|${file}`;
    if (this.listCache.has(key)) return this.listCache.get(key);
    const progress: Progress | undefined = this.opts.onProgress && ((done, total) => this.opts.onProgress!(`loading ${spec.file}`, done, total));
    let entries: string[] | undefined;
    try {
      const r = loadList(file, { kind, ...(spec.format ? { format: spec.format } : {}), ...(spec.mode ? { mode: spec.mode } : {}), ...(progress ? { onProgress: progress } : {}) });
      this.src.errors.push(...r.errors);
      entries = r.errors.length ? undefined : r.entries;
    } catch (err) {
      this.src.error([...path, "file"], `cannot read list file ${spec.file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    this.listCache.set(key, entries);
    return entries;
  }
}

/** "host/path", "http://host/path" or "host" -> { host, path } with a leading "/". */
export function parseUrlMatch(text: string): { host: string; path: string } | undefined {
  const stripped = text.trim().replace(/^[a-z][a-z0-9+.-]*:\/\//i, "");
  const slash = stripped.indexOf("/");
  const hostPart = slash < 0 ? stripped : stripped.slice(0, slash);
  const host = normalizeName(hostPart.replace(/:\d+$/, ""));
  if (!host) return undefined;
  return { host, path: slash < 0 ? "/" : stripped.slice(slash) };
}
