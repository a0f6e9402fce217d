// Loads seeds/*.yaml (one documented event a file) and answers "does seed X exist?".
import { readdirSync, existsSync } from "node:fs";
import { join } from "node:path";
import { YamlSource, type SourceError } from "../util/yaml-source.js";
import { isValidTimeZone, parseInstant } from "../util/time.js";
import { SeedSchema, type SeedDoc } from "./schema.js";

export interface Seed extends SeedDoc { file: string; start: number; end?: number }

export interface SeedCatalog {
  seeds: Map<string, Seed>;
  errors: SourceError[];
}

export function loadSeedFile(file: string): { seed?: Seed; errors: SourceError[] } {
  const src = new YamlSource(file);
  const doc = src.check(SeedSchema);
  if (!doc) return { errors: src.errors };
  if (!isValidTimeZone(doc.timezone)) src.error(["timezone"], `unknown time zone "${doc.timezone}"`);
  const tz = isValidTimeZone(doc.timezone) ? doc.timezone : "UTC";
  const start = parseInstant(doc.when.start, tz);
  if (start === undefined) src.error(["when", "start"], `not a date or date-time: "${doc.when.start}"`);
  const end = doc.when.end === undefined ? undefined : parseInstant(doc.when.end, tz);
  if (doc.when.end !== undefined && end === undefined) src.error(["when", "end"], `not a date or date-time: "${doc.when.end}"`);
  if (start !== undefined && end !== undefined && end < start) src.error(["when", "end"], "end is before start");
  if (src.errors.length) return { errors: src.errors };
  return { seed: { ...doc, file, start: start!, ...(end !== undefined ? { end } : {}) }, errors: [] };
}

export function loadSeeds(dirs: string[]): SeedCatalog {
  const seeds = new Map<string, Seed>();
  const errors: SourceError[] = [];
  for (const dir of dirs) {
    if (!existsSync(dir)) continue;
    for (const name of readdirSync(dir).filter((n) => /\.ya?ml$/.test(n)).sort()) {
      const file = join(dir, name);
      const r = loadSeedFile(file);
      errors.push(...r.errors);
      if (!r.seed) continue;
      if (seeds.has(r.seed.id)) {
        errors.push({ file, line: 1, col: 1, message: `duplicate seed id "${r.seed.id}" (also in ${seeds.get(r.seed.id)!.file})` });
        continue;
      }
      seeds.set(r.seed.id, r.seed);
    }
  }
  return { seeds, errors };
}
