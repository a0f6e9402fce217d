// Turns the lab's profile options into loaded profiles (ids, files, country + instant).
import { loadProfile } from "./load.js";
import { profilesAt, resolveProfileRef, scanProfiles, summarize } from "./catalog.js";
import { isValidTimeZone } from "../util/time.js";
import type { Profile } from "./model.js";
import { loadSeeds, type SeedCatalog } from "../seeds/catalog.js";
import { SourceErrors } from "../util/yaml-source.js";
import { SEEDS_DIR } from "../paths.js";

export interface ProfileSelection {
  refs: (string | Profile)[];
  country?: string;
  at?: number;
  /** With `country`: also the profiles that start after `at` (a replay plays into them). */
  onward?: boolean;
  variant?: string;
  seedDirs?: string[];
  onProgress?: (what: string, done: number, total: number) => void;
}

export function loadSeedCatalog(extra: string[] = []): SeedCatalog {
  return loadSeeds([SEEDS_DIR, ...extra]);
}

/**
 * The time zone instants without an offset are read in (--at, --from, seeks): the first
 * profile's, or with --country that country's profiles' zone; UTC when there is none.
 * One rule everywhere, so that --at 2014-02-13T17:30 is Almaty's 17:30, as in the profiles.
 */
export function zoneFor(refs: (string | Profile)[], country?: string): string {
  const first = refs[0];
  if (first !== undefined && typeof first !== "string") return first.timezone;
  const known = scanProfiles();
  if (typeof first === "string") {
    try {
      const file = resolveProfileRef(first, known);
      const s = known.find((k) => k.file === file) ?? summarize(file);
      if (s?.timezone && isValidTimeZone(s.timezone)) return s.timezone;
    } catch {
      // An unknown profile is reported where it is loaded.
    }
  }
  if (country) {
    const same = known.find((k) => k.country === country.toUpperCase() && k.kind !== "example" && isValidTimeZone(k.timezone));
    if (same) return same.timezone;
  }
  return "UTC";
}

export function selectProfiles(sel: ProfileSelection): { profiles: Profile[]; seeds: SeedCatalog } {
  const seeds = loadSeedCatalog(sel.seedDirs);
  const known = scanProfiles();
  const refs: (string | Profile)[] = [...sel.refs];
  if (sel.country) {
    if (sel.at === undefined) throw new Error("--country needs an instant (--at or --from) to choose the profiles in force then");
    const found = profilesAt(sel.country, sel.at, known, sel.onward);
    if (!found.length) throw new Error(`no ${sel.country.toUpperCase()} profile covers ${new Date(sel.at).toISOString()} (chokepoint list shows their periods)`);
    for (const p of found) if (!refs.includes(p.id) && !refs.includes(p.file)) refs.push(p.file);
  }
  const profiles: Profile[] = [];
  let variantUsed = sel.variant === undefined;
  for (const ref of refs) {
    if (typeof ref !== "string") {
      if (profiles.some((p) => p.id === ref.id)) throw new Error(`two profiles have the id "${ref.id}"; ids must be unique in one lab`);
      profiles.push(ref);
      continue;
    }
    const file = resolveProfileRef(ref, known);
    const summary = known.find((k) => k.file === file);
    // A variant applies to the profiles that define it; the others load as they are.
    const hasVariant = sel.variant !== undefined && (summary ? summary.variants.includes(sel.variant) : true);
    const r = loadProfile(file, {
      seeds,
      ...(hasVariant ? { variant: sel.variant! } : {}),
      ...(sel.onProgress ? { onProgress: sel.onProgress } : {}),
    });
    if (!r.profile) throw new SourceErrors(r.errors);
    if (hasVariant) variantUsed = true;
    const twin = profiles.find((p) => p.id === r.profile!.id);
    if (twin) {
      // The same file twice (an id given and found again by --country) is one profile; two files with one id are a mistake.
      if (twin.file === r.profile.file) continue;
      throw new Error(`two profiles have the id "${r.profile.id}": ${twin.file ?? "(built in code)"} and ${r.profile.file}; ids must be unique in one lab`);
    }
    profiles.push(r.profile);
  }
  if (!variantUsed) {
    const offered = [...new Set(profiles.flatMap((p) => Object.keys(p.variants)))];
    throw new Error(`no selected profile has a variant "${sel.variant}"${offered.length ? ` (they offer: ${offered.join(", ")})` : " (they offer none)"}`);
  }
  return { profiles, seeds };
}
