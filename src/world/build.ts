// Builds the lab world for a set of profiles: world/*.yaml plus each profile's `world:`
// section (profiles first, so a regime's pins win), with the names the rules mention
// reserved collision-free.
import type { Profile } from "../profile/model.js";
import { SourceErrors } from "../util/yaml-source.js";
import { emptyWorldData, loadWorldDir, mergeInto, WORLD_DIR } from "./data.js";
import { World } from "./world.js";

/** Inline names of rules (list files excluded: a million names need no reservation). */
function ruleNames(p: Profile): string[] {
  const out: string[] = [];
  for (const r of p.rules) {
    for (const list of [r.match.domain, r.match.host, r.match.sni]) if (list && list.length <= 1000) out.push(...list);
    for (const u of r.match.url ?? []) out.push(u.host);
  }
  return out;
}

export function buildWorld(profiles: readonly Profile[], opts: { mode?: "lab" | "internet"; dir?: string; hosts?: Record<string, string[]> } = {}): World {
  const data = emptyWorldData();
  // The user's own servers (--service) first: their names must be what the user said.
  if (opts.hosts) mergeInto(data, { hosts: opts.hosts, nonexistent: [], certs: {} });
  for (const p of profiles) mergeInto(data, { hosts: p.world.hosts, nonexistent: p.world.nonexistent, certs: p.world.certs });
  const files = loadWorldDir(opts.dir ?? WORLD_DIR);
  if (files.errors.length) throw new SourceErrors(files.errors);
  mergeInto(data, files.data);
  const known = [...Object.keys(data.hosts), ...profiles.flatMap(ruleNames)];
  return new World(data, { mode: opts.mode ?? "lab", knownNames: known });
}
