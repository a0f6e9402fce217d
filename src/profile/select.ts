// Turns the lab's profile options into loaded profiles (ids, files, country + instant).
import { loadProfile } from "./load.js";
import { profilesAt, resolveProfileRef, scanProfiles } from "./catalog.js";
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
    if (typeof ref !== "string") { profiles.push(ref); continue; }
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
    if (profiles.some((p) => p.id === r.profile!.id)) continue;
    profiles.push(r.profile);
  }
  if (!variantUsed) throw new Error(`no selected profile has a variant "${sel.variant}"`);
  return { profiles, seeds };
}
