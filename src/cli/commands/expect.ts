// `chokepoint expect`: the verdict the lab's censor will produce for each target, from the
// policy, without sending traffic (src/probe/expect.ts): a table, JSON or CSV.
import type { Command } from "commander";
import { readFileSync } from "node:fs";
import { selectProfiles, zoneFor } from "../../profile/select.js";
import { formatFor, testListsCell } from "../../profile/lists.js";
import { compilePolicy } from "../../policy/engine.js";
import { buildWorld } from "../../world/build.js";
import { toInstant } from "../../util/time.js";
import { expectedVerdict, webTarget, type ExpectedVerdict } from "../../probe/expect.js";
import { expectedMessaging, type ExpectedMessaging } from "../../probe/messaging.js";
import { fail } from "../errors.js";
import { c } from "../style.js";

interface ExpectOptions {
  profile: string[];
  country?: string;
  at?: string;
  from?: string;
  network?: string;
  variant?: string;
  targets?: string;
  json?: boolean;
  csv?: boolean;
}

/**
 * Targets from a file: an OONI test-lists CSV (`.csv`: the url column, as profiles' lists
 * read it), else one a line (blank lines and # comments skipped).
 */
export function readTargets(file: string): string[] {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new Error(`--targets ${file}: ${(err as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (err as Error).message}`);
  }
  const lines = text.split(/\r?\n/);
  if (formatFor(file) === "csv") return lines.map((l, i) => testListsCell(l, i + 1)).filter((t): t is string => t !== null);
  return lines.map((l) => l.trim()).filter((l) => l && !l.startsWith("#"));
}

const csvCell = (v: unknown): string => {
  const s = v === undefined ? "" : String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};

export function expectCommand(program: Command): void {
  program.command("expect")
    .description("the verdict the lab's censor will produce for each target (URLs or names), computed from the policy without sending traffic")
    .argument("[targets...]", "http(s) URLs or names (a name means https://NAME/), or OONI's messaging tests as service:whatsapp, service:telegram, service:signal, service:facebook_messenger, service:tor, service:dnscheck")
    .option("--profile <id|file...>", "the regime (repeatable)", (v: string, acc: string[]) => [...acc, ...v.split(",")], [] as string[])
    .option("--country <cc>", "the profiles of this country in force at --at")
    .option("--at <instant>", "the instant of the measurement (lab time; default: noon of the first profile's first day)")
    .option("--from <instant>", "when the lab started (relative windows count from it; default: --at)")
    .option("--network <id>", "the client's network (default: the first profile's first network)")
    .option("--variant <name>", "a variant of the profiles that define it")
    .option("--targets <file>", "targets from a file: one a line, or an OONI test-lists CSV (its url column)")
    .option("--json", "a JSON array: {target, blocking, failure?, observe, rule?, profile?, ...}")
    .option("--csv", "CSV with a header row")
    .action((args: string[], o: ExpectOptions) => {
      try {
        if (o.json && o.csv) throw new Error("--json and --csv: choose one output");
        const targets = [...args, ...(o.targets ? readTargets(o.targets) : [])];
        if (!targets.length) throw new Error("name targets (URLs or names) or --targets FILE");
        if (!o.profile.length && !o.country) throw new Error("name a regime: --profile ID (chokepoint list shows them) or --country CC --at DATE");
        const zone = zoneFor(o.profile, o.country);
        const atArg = toInstant(o.at, "at", zone);
        if (o.country && atArg === undefined) throw new Error("--country needs --at (the profiles in force then)");
        const { profiles } = selectProfiles({
          refs: o.profile,
          ...(o.country ? { country: o.country, at: atArg! } : {}),
          ...(o.variant ? { variant: o.variant } : {}),
        });
        const first = profiles[0]!;
        const at = atArg ?? first.period.start + 12 * 3_600_000;
        const networks = [...new Set(profiles.flatMap((p) => p.networks))];
        const network = o.network ?? first.networks[0]!;
        if (!networks.includes(network)) throw new Error(`no network "${network}" in the chosen profiles (networks: ${networks.join(", ")})`);
        const policy = compilePolicy(profiles, { labStart: toInstant(o.from, "from", zone) ?? at });
        const world = buildWorld(profiles, { mode: "lab" });
        const rows: (ExpectedVerdict | ExpectedMessaging | { target: string; error: string })[] = targets.map((t) => {
          try {
            if (t.startsWith("service:")) return expectedMessaging(policy, world, t, network, at);
            webTarget(t);
            return expectedVerdict(policy, world, t, network, at);
          } catch (err) {
            return { target: t, error: (err as Error).message };
          }
        });
        const errors = rows.filter((r): r is { target: string; error: string } => "error" in r);
        if (o.json) process.stdout.write(`${JSON.stringify(rows)}\n`);
        else if (o.csv) {
          const cols = ["target", "network", "at", "blocking", "accessible", "failure", "observe", "stage", "rule", "profile", "seed", "error"] as const;
          process.stdout.write(`${cols.join(",")}\n`);
          for (const r of rows) process.stdout.write(`${cols.map((k) => csvCell((r as Record<string, unknown>)[k])).join(",")}\n`);
        } else {
          process.stdout.write(c.dim(`${profiles.map((p) => p.id).join(", ")} on ${network} at ${new Date(at).toISOString()}\n`));
          const w = Math.min(60, Math.max(6, ...rows.map((r) => r.target.length)));
          process.stdout.write(`${"target".padEnd(w)}  ${"blocking".padEnd(12)}  ${"failure".padEnd(22)}  ${"observe".padEnd(12)}  rule\n`);
          for (const r of rows) {
            if ("error" in r) { process.stdout.write(`${r.target.padEnd(w)}  ${c.red(r.error)}\n`); continue; }
            if ("test" in r) {
              const blocked = Object.entries(r.checks).filter(([, v]) => v.failure).map(([k, v]) => `${k}: ${v.failure}${v.rule ? ` (${v.rule})` : ""}`);
              process.stdout.write(`${r.target.padEnd(w)}  ${r.observe.padEnd(12)}  ${blocked.length ? blocked.join("; ") : c.dim("every check passes")}  ${c.dim(JSON.stringify(r.keys))}\n`);
              continue;
            }
            const rule = r.rule ? `${r.profile}/${r.rule}${r.residual ? c.dim(` (then ${r.residual.seconds} s residual, ${r.residual.key})`) : ""}` : c.dim("-");
            process.stdout.write(`${r.target.padEnd(w)}  ${String(r.blocking).padEnd(12)}  ${(r.failure ?? "-").padEnd(22)}  ${r.observe.padEnd(12)}  ${rule}\n`);
          }
        }
        if (errors.length) {
          process.stderr.write(`chokepoint: ${errors.length} target${errors.length > 1 ? "s" : ""} not measured: ${errors.map((e) => e.error).join("; ")}\n`);
          process.exitCode = 1;
        }
      } catch (err) {
        fail(err);
      }
    });
}
