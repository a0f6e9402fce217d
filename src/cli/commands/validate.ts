import type { Command } from "commander";
import { resolve } from "node:path";
import { loadProfile } from "../../profile/load.js";
import { loadSeedFile } from "../../seeds/catalog.js";
import { loadSeedCatalog } from "../../profile/select.js";
import { YamlSource, type SourceError } from "../../util/yaml-source.js";
import { PROFILES_DIR } from "../../paths.js";
import { printSourceErrors } from "../errors.js";

/** A file is a seed when it has a `when` and a `mechanism`; otherwise a profile. */
function isSeed(file: string): boolean {
  const d = new YamlSource(file).data as Record<string, unknown> | undefined;
  return !!d && typeof d === "object" && "when" in d && "mechanism" in d;
}

export function validateCommand(program: Command): void {
  program
    .command("validate")
    .description("check profiles (and seeds); errors as file:line:col: message")
    .argument("<file...>", "profile or seed YAML files")
    .option("-q, --quiet", "print nothing for valid files")
    .option("--seeds <dir...>", "extra seed directories that rules may cite")
    .action((files: string[], o: { quiet?: boolean; seeds?: string[] }) => {
      const seeds = loadSeedCatalog(o.seeds);
      let bad = 0;
      for (const file of files) {
        let errors: SourceError[];
        let summary = "";
        if (isSeed(file)) {
          errors = loadSeedFile(file).errors;
          summary = "seed";
        } else {
          // The project's own regime profiles must cite a seed on every rule.
          const requireSeeds = resolve(file).startsWith(`${PROFILES_DIR}/`) && !resolve(file).includes("/examples/");
          const r = loadProfile(file, { seeds, requireSeeds });
          errors = r.errors;
          if (r.profile) summary = `profile ${r.profile.id}, ${r.profile.rules.length} rule${r.profile.rules.length === 1 ? "" : "s"}`;
        }
        if (errors.length) {
          bad++;
          printSourceErrors(errors);
        } else if (!o.quiet) process.stdout.write(`${file}: ok (${summary})\n`);
      }
      process.exitCode = bad ? 1 : 0;
    });
}
