// The profiles a user can name by id: the project's regime profiles (profiles/*.yaml),
// its examples (profiles/examples/*.yaml) and any directory in CHOKEPOINT_PROFILES.
// Listing reads only the YAML headers; list files are loaded when a profile is used.
import { existsSync, readdirSync, statSync } from "node:fs";
import { delimiter, join, resolve } from "node:path";
import { YamlSource, suggest } from "../util/yaml-source.js";
import { isValidTimeZone, parseInstant } from "../util/time.js";
import { EXAMPLES_DIR, PROFILES_DIR } from "../paths.js";

export interface ProfileSummary {
  id: string;
  title: string;
  country: string;
  timezone: string;
  period: { start: string; end?: string };
  /** "procedure" profiles are not events: time travel leaves them out. */
  procedure: boolean;
  /** Period bounds as epoch ms, when they parse. */
  start?: number;
  end?: number;
  networks: string[];
  variants: string[];
  rules: number;
  sources: string[];
  file: string;
  /** "regime" for the project's documented profiles, "example" for examples, "user" otherwise. */
  kind: "regime" | "example" | "user";
}

export function profileDirs(): { dir: string; kind: ProfileSummary["kind"] }[] {
  const extra = (process.env.CHOKEPOINT_PROFILES ?? "").split(delimiter).filter(Boolean);
  return [
    { dir: PROFILES_DIR, kind: "regime" as const },
    { dir: EXAMPLES_DIR, kind: "example" as const },
    ...extra.map((d) => ({ dir: resolve(d), kind: "user" as const })),
  ];
}

export function scanProfiles(): ProfileSummary[] {
  const out: ProfileSummary[] = [];
  const seen = new Set<string>();
  for (const { dir, kind } of profileDirs()) {
    if (!existsSync(dir)) continue;
    for (const name of readdirSync(dir).sort()) {
      if (!/\.ya?ml$/.test(name)) continue;
      const file = join(dir, name);
      const s = summarize(file, kind);
      if (s && !seen.has(s.id)) {
        seen.add(s.id);
        out.push(s);
      }
    }
  }
  return out;
}

export function summarize(file: string, kind: ProfileSummary["kind"] = "user"): ProfileSummary | undefined {
  const src = new YamlSource(file);
  const d = src.data as Record<string, unknown> | undefined;
  if (!d || typeof d.id !== "string") return undefined;
  const period = (d.period ?? {}) as { start?: string; end?: string };
  const tz = typeof d.timezone === "string" && isValidTimeZone(d.timezone) ? d.timezone : "UTC";
  const s: ProfileSummary = {
    id: d.id,
    title: String(d.title ?? ""),
    country: String(d.country ?? ""),
    timezone: String(d.timezone ?? ""),
    period: { start: String(period.start ?? ""), ...(period.end ? { end: String(period.end) } : {}) },
    procedure: d.kind === "procedure",
    networks: Array.isArray(d.networks) ? d.networks.map(String) : [],
    variants: d.variants && typeof d.variants === "object" ? Object.keys(d.variants) : [],
    rules: Array.isArray(d.rules) ? d.rules.length : 0,
    sources: Array.isArray(d.sources) ? d.sources.map(String) : [],
    file,
    kind,
  };
  const start = period.start ? parseInstant(String(period.start), tz) : undefined;
  const end = period.end ? parseInstant(String(period.end), tz) : undefined;
  if (start !== undefined) s.start = start;
  if (end !== undefined) s.end = end;
  return s;
}

export class UnknownProfileError extends Error {
  constructor(readonly ref: string, readonly suggestions: string[]) {
    super(`unknown profile "${ref}"${suggestions.length ? `; did you mean ${suggestions.map((s) => `"${s}"`).join(", ")}?` : ""} (chokepoint list shows them all)`);
    this.name = "UnknownProfileError";
  }
}

/** A profile reference is a path to a YAML file or the id of a known profile. */
export function resolveProfileRef(ref: string, known = scanProfiles()): string {
  if (/\.ya?ml$/i.test(ref) || ref.includes("/")) {
    const file = resolve(ref);
    if (existsSync(file) && statSync(file).isFile()) return file;
  }
  const hit = known.find((p) => p.id === ref);
  if (hit) return hit.file;
  throw new UnknownProfileError(ref, suggest(ref, known.map((p) => p.id)));
}

/**
 * Profiles of `country` in force at `at` (time travel: the state of the record then); with
 * `onward`, also every later one, for a replay that plays the years from `at`.
 */
export function profilesAt(country: string, at: number, known = scanProfiles(), onward = false): ProfileSummary[] {
  const cc = country.toUpperCase();
  return known.filter((p) => p.kind !== "example" && !p.procedure && p.country === cc && p.start !== undefined
    && (onward || p.start <= at) && (p.end === undefined || at < p.end));
}
