// The regime's story for the live view and GET /v1/profiles: what is active (title, dates,
// description, confidence), the seed events it cites with their sources, its rules, when
// they are in force (segments between the policy's window edges), and what else exists.
import type { Lab } from "../lab/lab.js";
import { describeAction } from "../profile/describe.js";
import { scanProfiles } from "../profile/catalog.js";

const MAX_SEGMENTS = 400;

export interface Segment { start: string; end: string; rules: string[] }

/** Spans of lab time in which the same rules are in force (on any network), from `from` to `to`. */
export function segments(lab: Lab, from: number, to: number): Segment[] {
  const out: Segment[] = [];
  const policy = lab.policy;
  const networks = lab.status().networks;
  let t = from;
  while (t < to && out.length < MAX_SEGMENTS) {
    const ids = new Set<string>();
    for (const n of networks) for (const r of policy.rulesInForce(t, n)) ids.add(`${r.profile}/${r.id}`);
    const next = Math.max(t + 1, Math.min(policy.stableUntil(t), to));
    const rules = [...ids].sort();
    const last = out[out.length - 1];
    if (last && last.rules.join() === rules.join()) last.end = new Date(next).toISOString();
    else out.push({ start: new Date(t).toISOString(), end: new Date(next).toISOString(), rules });
    t = next;
  }
  return out;
}

export function story(lab: Lab): unknown {
  const active = lab.profiles;
  const start = Math.min(...active.map((p) => p.period.start));
  const now = lab.clock.now();
  const end = Math.max(...active.map((p) => p.period.end ?? Math.max(now, p.period.start + 86_400_000)));
  const seedIds = [...new Set(active.flatMap((p) => [...p.sources, ...p.rules.map((r) => r.seed).filter((s): s is string => !!s)]))];
  return {
    active: active.map((p) => ({
      id: p.id, title: p.title, description: p.description ?? "", timezone: p.timezone,
      period: { start: new Date(p.period.start).toISOString(), ...(p.period.end !== undefined ? { end: new Date(p.period.end).toISOString() } : {}) },
      confidence: p.confidence ?? null, variant: p.variant ?? null, variants: p.variants, networks: p.networks, sources: p.sources,
      rules: p.rules.map((r) => ({ id: r.id, action: describeAction(r.action), networks: r.networks, seed: r.seed ?? null, confidence: r.confidence ?? null, description: r.description ?? "" })),
    })),
    seeds: seedIds.map((id) => lab.seeds.seeds.get(id)).filter((s) => !!s).map((s) => ({
      id: s!.id, title: s!.title, when: s!.when, where: s!.where, what: s!.what, mechanism: s!.mechanism, confidence: s!.confidence,
      sources: s!.sources.map((x) => ({ title: x.title, publisher: x.publisher, date: x.date, ...(x.url ? { url: x.url } : {}) })),
    })),
    timeline: active.length ? { start: new Date(start).toISOString(), end: new Date(end).toISOString(), segments: segments(lab, start, end) } : null,
    available: scanProfiles().filter((p) => p.kind !== "user").map((p) => ({ id: p.id, title: p.title, period: p.period, variants: p.variants, kind: p.kind })),
  };
}
