// Loads a profile file: YAML -> schema -> checks (check.ts: positions for every problem) ->
// the resolved model (build.ts: variant applied, list files loaded). I/O lives here, not in the policy.
import { YamlSource, type SourceError } from "../util/yaml-source.js";
import type { SeedCatalog } from "../seeds/catalog.js";
import { describeActionProblem } from "./actions.js";
import { ProfileSchema } from "./schema.js";
import type { Profile } from "./model.js";
import { Checker } from "./check.js";
import { ProfileBuilder } from "./build.js";

export { parseUrlMatch } from "./url-match.js";

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
  const profile = new ProfileBuilder(src, checker.tz, opts).build(doc);
  return src.errors.length || !profile ? { errors: sortErrors(src.errors) } : { profile, errors: [] };
}

function sortErrors(errors: SourceError[]): SourceError[] {
  return [...errors].sort((a, b) => (a.file === b.file ? a.line - b.line || a.col - b.col : a.file < b.file ? -1 : 1));
}
