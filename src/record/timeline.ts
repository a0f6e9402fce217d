// The documented record of a country as one sequence: each seed event (what happened, when,
// how sure we are, the sources) with the profiles that replay it. Used by `chokepoint
// timeline` and to generate docs/regimes.md.
import { loadSeedCatalog } from "../profile/select.js";
import { scanProfiles, type ProfileSummary } from "../profile/catalog.js";
import type { Seed } from "../seeds/catalog.js";

export interface TimelineEntry { seed: Seed; profiles: ProfileSummary[] }

export function timeline(country: string): TimelineEntry[] {
  const prefix = `${country.toLowerCase()}-`;
  const profiles = scanProfiles().filter((p) => p.kind === "regime" && p.country.toLowerCase() === country.toLowerCase());
  const seeds = [...loadSeedCatalog().seeds.values()].filter((s) => s.id.startsWith(prefix));
  return seeds
    .sort((a, b) => a.start - b.start || a.id.localeCompare(b.id))
    .map((seed) => ({ seed, profiles: profiles.filter((p) => p.sources.includes(seed.id)) }));
}

/** "2011-06-11 .. 2011-07-18" in the seed's own words (dates as written). */
export function span(seed: Seed): string {
  const day = (t: string): string => t.replace("T", " ");
  return `${day(seed.when.start)}${seed.when.end ? ` .. ${day(seed.when.end)}` : " .."}${seed.when.approximate ? " (approx.)" : ""}`;
}

export function sourceLine(s: Seed["sources"][number]): string {
  return [s.publisher, `"${s.title}"`, s.date, s.url ?? (s.document ? `seed document ${s.document}` : undefined)].filter(Boolean).join(", ");
}
