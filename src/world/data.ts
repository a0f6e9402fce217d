// Loads world/*.yaml: the pins that make IP-level blocking realistic (shared platform
// addresses, documented prefixes) and names that do not exist.
import { existsSync, readdirSync } from "node:fs";
import { isIP } from "node:net";
import { join } from "node:path";
import { normalizeNameEntry } from "../profile/lists.js";
import { YamlSource, type SourceError } from "../util/yaml-source.js";
import { PACKAGE_ROOT } from "../paths.js";
import { WorldFileSchema, type WorldFileDoc } from "./schema.js";

export const WORLD_DIR = join(PACKAGE_ROOT, "world");

export interface ServiceSpec {
  names: string[];
  chat?: { names: string[]; tcp?: number[]; udp?: number[] };
}

export interface WorldData {
  hosts: Record<string, string[]>;
  nonexistent: string[];
  certs: Record<string, string>;
  services?: Record<string, ServiceSpec>;
}

export function emptyWorldData(): WorldData {
  return { hosts: {}, nonexistent: [], certs: {}, services: {} };
}

export function loadWorldFile(file: string): { doc?: WorldFileDoc; errors: SourceError[] } {
  const src = new YamlSource(file);
  const doc = src.check(WorldFileSchema);
  if (!doc) return { errors: src.errors };
  for (const [name, addrs] of Object.entries(doc.hosts ?? {})) {
    if (!normalizeNameEntry(name)) src.error(["hosts", name], `not a name pattern: "${name}"`, true);
    addrs.forEach((a, i) => { if (!isIP(a)) src.error(["hosts", name, i], `not an IP address: "${a}"`); });
  }
  (doc.nonexistent ?? []).forEach((n, i) => { if (!normalizeNameEntry(n)) src.error(["nonexistent", i], `not a name pattern: "${n}"`); });
  for (const [service, spec] of Object.entries(doc.services ?? {})) {
    spec.names.forEach((n, i) => { if (!normalizeNameEntry(n)) src.error(["services", service, "names", i], `not a name pattern: "${n}"`); });
    spec.chat?.names.forEach((n, i) => { if (!normalizeNameEntry(n)) src.error(["services", service, "chat", "names", i], `not a name pattern: "${n}"`); });
  }
  for (const name of Object.keys(doc.certs ?? {})) if (!normalizeNameEntry(name)) src.error(["certs", name], `not a name pattern: "${name}"`, true);
  return src.errors.length ? { errors: src.errors } : { doc, errors: [] };
}

/** Merges the world files in `dir` (sorted by name); earlier entries win. */
export function loadWorldDir(dir = WORLD_DIR): { data: WorldData; errors: SourceError[] } {
  const data = emptyWorldData();
  const errors: SourceError[] = [];
  if (!existsSync(dir)) return { data, errors };
  for (const name of readdirSync(dir).filter((n) => /\.ya?ml$/.test(n)).sort()) {
    const r = loadWorldFile(join(dir, name));
    errors.push(...r.errors);
    if (r.doc) mergeInto(data, { hosts: r.doc.hosts ?? {}, nonexistent: r.doc.nonexistent ?? [], certs: r.doc.certs ?? {}, services: (r.doc.services ?? {}) as Record<string, ServiceSpec> });
  }
  return { data, errors };
}

/** Adds `more` to `data`; entries already in `data` win (so merge the most specific first). */
export function mergeInto(data: WorldData, more: WorldData): void {
  for (const [k, v] of Object.entries(more.hosts)) if (!(k in data.hosts)) data.hosts[k] = v;
  for (const n of more.nonexistent) if (!data.nonexistent.includes(n)) data.nonexistent.push(n);
  for (const [k, v] of Object.entries(more.certs)) if (!(k in data.certs)) data.certs[k] = v;
  data.services ??= {};
  for (const [k, v] of Object.entries(more.services ?? {})) if (!(k in data.services)) data.services[k] = v;
}
