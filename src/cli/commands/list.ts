import type { Command } from "commander";
import { scanProfiles } from "../../profile/catalog.js";
import { c } from "../style.js";
import { displayPath } from "../errors.js";

export function listCommand(program: Command): void {
  program
    .command("list")
    .description("list the profiles (documented regimes and examples)")
    .option("--json", "one JSON array on stdout")
    .option("--country <cc>", "only this country (e.g. kz)")
    .action((o: { json?: boolean; country?: string }) => {
      let profiles = scanProfiles();
      if (o.country) profiles = profiles.filter((p) => p.country === o.country!.toUpperCase());
      if (o.json) {
        process.stdout.write(`${JSON.stringify(profiles.map(({ start: _s, end: _e, file, ...p }) => ({ ...p, file: displayPath(file) })))}\n`);
        return;
      }
      const width = Math.max(4, ...profiles.map((p) => p.id.length));
      for (const p of profiles) {
        const when = `${p.period.start.slice(0, 10)}..${p.period.end?.slice(0, 10) ?? ""}`;
        process.stdout.write(`${c.bold(p.id.padEnd(width))}  ${c.dim(p.country)}  ${when.padEnd(22)}  ${p.title}${p.kind === "example" ? c.dim(" (example)") : ""}\n`);
      }
    });
}
