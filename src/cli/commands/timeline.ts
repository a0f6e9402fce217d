import type { Command } from "commander";
import { sourceLine, span, timeline } from "../../record/timeline.js";
import { fail } from "../errors.js";
import { c } from "../style.js";
import { invokedAs } from "./up.js";

export function timelineCommand(program: Command): void {
  program.command("timeline")
    .description("the documented record of a country in order: each event, its confidence, sources, and the profiles that replay it")
    .argument("<country>", "ISO country code, e.g. kz")
    .action((country: string) => {
      try {
        const entries = timeline(country);
        if (!entries.length) throw new Error(`no seed events for "${country}" (seeds are named <country>-<date>-<subject>)`);
        for (const { seed, profiles } of entries) {
          process.stdout.write(`${c.bold(span(seed))}  ${seed.title}  ${c.dim(`[${seed.confidence}] ${seed.id}`)}\n`);
          process.stdout.write(`    ${profiles.length ? `replay: ${profiles.map((p) => p.id).join(", ")}` : c.dim("no profile yet")}\n`);
          for (const s of seed.sources) process.stdout.write(c.dim(`    source: ${sourceLine(s)}\n`));
        }
        process.stdout.write(c.dim(`${entries.length} events. Replay one: ${invokedAs()} up --profile ID; the record at a date: ${invokedAs()} up --country ${country} --at YYYY-MM-DD\n`));
      } catch (err) {
        fail(err);
      }
    });
}
