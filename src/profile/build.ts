// Builds the resolved model from a checked profile document: the variant applied, list files
// read, instants in epoch milliseconds in the profile's time zone, durations in
// milliseconds, rates in bytes/s. Only reached when the checks (check.ts) found nothing.
import { dirname, resolve } from "node:path";
import { parseDuration } from "../util/duration.js";
import { parseClockTime, parseInstant } from "../util/time.js";
import type { PathKey, YamlSource } from "../util/yaml-source.js";
import { toAction } from "./actions.js";
import { loadList, normalizeNameEntry, type Progress, type RpzPolicy } from "./lists.js";
import { DAYS, type ProfileDoc, type RuleDoc, type WindowDoc } from "./schema.js";
import { DEFAULT_DPI, type Match, type Profile, type Rule, type Window } from "./model.js";
import { LIST_MATCHERS } from "./matchers.js";
import { DEFAULT_BOX, type BoxModel } from "./box-model.js";
import { asArray, isObj } from "./check.js";
import { parseUrlMatch } from "./url-match.js";

export class ProfileBuilder {
  private listCache = new Map<string, { entries: string[]; policies?: Map<string, RpzPolicy> } | undefined>();
  /** RPZ policies of the list entries of the rule being built, by matcher field. */
  private rpz: { field: "domain" | "host" | "sni"; policies: Map<string, RpzPolicy> }[] = [];

  constructor(private readonly src: YamlSource, private readonly tz: string, private readonly opts: { variant?: string; onProgress?: (what: string, done: number, total: number) => void }) {}

  build(doc: ProfileDoc): Profile | undefined {
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
    const rules = ruleDocs.flatMap(({ doc: r, path }) => this.rule(doc, r, path));
    // A variant may change the DPI quirks too (the on-path box's switches where the record is silent).
    const vdpi = variant !== undefined ? doc.variants?.[variant]?.dpi : undefined;
    const dpi = { ...(doc.dpi ?? {}), ...(vdpi ?? {}), ...(doc.dpi?.box || vdpi?.box ? { box: { ...(doc.dpi?.box ?? {}), ...(vdpi?.box ?? {}) } } : {}) };
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
        ...(dpi.box ? { box: { ...DEFAULT_BOX, ...dpi.box, hops: dpi.box.hops ?? DEFAULT_BOX.hops, injected: { ...DEFAULT_BOX.injected, ...dpi.box.injected } } as BoxModel } : {}),
      },
      world: { hosts: doc.world?.hosts ?? {}, nonexistent: doc.world?.nonexistent ?? [], certs: doc.world?.certs ?? {} },
      rules,
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

  private rule(profile: ProfileDoc, r: RuleDoc, path: PathKey[]): Rule[] {
    this.rpz = [];
    const match = this.resolveMatch(r.match, [...path, "match"]);
    if (!match) return [];
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
    return this.rpz.length ? this.splitByPolicy(rule, [...path, "match"]) : [rule];
  }

  /**
   * A rule whose names come from an RPZ zone: each record keeps its meaning. Passthru entries
   * become an exception placed first; rpz-drop a drop; NODATA an empty answer; rpz-tcp-only
   * a truncated one; local data a spoofed answer; NXDOMAIN records (CNAME .) take the rule's
   * own action (write `nxdomain` to keep their DNS meaning).
   */
  private splitByPolicy(rule: Rule, path: PathKey[]): Rule[] {
    const out: Rule[] = [];
    for (const { field, policies } of this.rpz) {
      const groups = new Map<string, { action: Rule["action"] | undefined; names: string[] }>();
      for (const name of rule.match[field] ?? []) {
        const p = policies.get(name) ?? { kind: "nxdomain" as const };
        const key = p.kind === "local" ? `local ${[...p.addresses].sort().join(",")}` : p.kind;
        const action: Rule["action"] | undefined = p.kind === "passthru" ? { type: "allow" } : p.kind === "drop" ? { type: "drop" } : p.kind === "nodata" ? { type: "empty" }
          : p.kind === "tcp-only" ? { type: "truncate" } : p.kind === "local" ? { type: "spoof", addresses: p.addresses, ttl: 60 } : undefined;
        let g = groups.get(key);
        if (!g) groups.set(key, (g = { action, names: [] }));
        g.names.push(name);
      }
      let n = 0;
      for (const [key, g] of groups) {
        const action = g.action ?? rule.action;
        if (field !== "domain" && g.action && g.action.type !== "allow" && g.action.type !== "drop") {
          this.src.error([...path, field, "file"], `the zone's ${key} records (${g.names.length}, e.g. ${g.names[0]}) only have a meaning for DNS, and this rule matches ${field}`);
          continue;
        }
        const sub: Rule = { ...rule, match: { ...rule.match, [field]: g.names }, action, ...(g.action ? { id: `${rule.id}:${key.split(" ")[0]}${key.startsWith("local") ? `-${++n}` : ""}` } : {}) };
        if (g.action?.type === "allow") out.unshift(sub);
        else out.push(sub);
      }
    }
    return out;
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
    for (const field of LIST_MATCHERS) {
      const v = m[field];
      if (v === undefined) continue;
      if (isObj(v)) {
        const loaded = this.list(v as { file: string; format?: "plain" | "csv" | "rpz"; mode?: "exact" | "suffix" }, field === "ip" ? "ip" : "name", [...path, field]);
        if (!loaded) ok = false;
        else {
          out[field] = loaded.entries;
          if (loaded.policies && field !== "ip") this.rpz.push({ field, policies: loaded.policies });
        }
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

  private list(spec: { file: string; format?: "plain" | "csv" | "rpz"; mode?: "exact" | "suffix" }, kind: "name" | "ip", path: PathKey[]): { entries: string[]; policies?: Map<string, RpzPolicy> } | undefined {
    const file = resolve(dirname(this.src.file), spec.file);
    const key = `${kind}|${spec.format ?? ""}|${spec.mode ?? ""}|${file}`;
    if (this.listCache.has(key)) return this.listCache.get(key);
    const progress: Progress | undefined = this.opts.onProgress && ((done, total) => this.opts.onProgress!(`loading ${spec.file}`, done, total));
    let entries: { entries: string[]; policies?: Map<string, RpzPolicy> } | undefined;
    try {
      const r = loadList(file, { kind, ...(spec.format ? { format: spec.format } : {}), ...(spec.mode ? { mode: spec.mode } : {}), ...(progress ? { onProgress: progress } : {}) });
      this.src.errors.push(...r.errors);
      entries = r.errors.length ? undefined : { entries: r.entries, ...(r.policies ? { policies: r.policies } : {}) };
    } catch (err) {
      this.src.error([...path, "file"], `cannot read list file ${spec.file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    this.listCache.set(key, entries);
    return entries;
  }
}
