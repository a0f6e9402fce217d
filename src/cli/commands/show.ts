import type { Command } from "commander";
import { resolveProfileRef } from "../../profile/catalog.js";
import { loadProfile } from "../../profile/load.js";
import { describeAction, describeMatch, describeWindow } from "../../profile/describe.js";
import type { Profile } from "../../profile/model.js";
import { formatInstant } from "../../util/time.js";
import { SourceErrors } from "../../util/yaml-source.js";
import { loadSeedCatalog } from "../../profile/select.js";
import { c } from "../style.js";
import { displayPath, fail } from "../errors.js";
import { terminalProgress } from "../progress.js";

const LIST_SAMPLE = 20;

/** The profile as JSON, with long name lists cut to a sample and a count. */
function toJson(p: Profile): unknown {
  return JSON.parse(JSON.stringify({ ...p, file: p.file && displayPath(p.file) }, (key, value: unknown) => {
    if (Array.isArray(value) && value.length > LIST_SAMPLE && ["domain", "host", "sni", "ip"].includes(key)) {
      return { count: value.length, sample: value.slice(0, LIST_SAMPLE) };
    }
    if ((key === "start" || key === "end" || key === "at") && typeof value === "number") return formatInstant(value, p.timezone);
    return value;
  }));
}

export function showCommand(program: Command): void {
  program
    .command("show")
    .description("show a profile: its story, rules, sources and expectations")
    .argument("<profile>", "profile id or file")
    .option("--variant <name>", "resolve this variant")
    .option("--json", "the resolved profile as JSON")
    .action((ref: string, o: { json?: boolean; variant?: string }) => {
      try {
        const seeds = loadSeedCatalog();
        const progress = terminalProgress();
        const r = loadProfile(resolveProfileRef(ref), { seeds, ...(o.variant ? { variant: o.variant } : {}), ...(progress ? { onProgress: progress } : {}) });
        if (!r.profile) throw new SourceErrors(r.errors);
        const p = r.profile;
        if (o.json) {
          process.stdout.write(`${JSON.stringify(toJson(p))}\n`);
          return;
        }
        const out: string[] = [];
        out.push(`${c.bold(p.title)}  ${c.dim(`(${p.id}${p.variant ? `, variant ${p.variant}` : ""})`)}`);
        out.push(`country ${p.country}, time zone ${p.timezone}, from ${formatInstant(p.period.start, p.timezone)}${p.period.end !== undefined ? ` until ${formatInstant(p.period.end, p.timezone)}` : ""}`);
        if (p.description) out.push("", p.description.trim());
        out.push("", `networks: ${p.networks.join(", ")}`);
        out.push(`DPI: inspects ${p.dpi.inspect}, Host match ${p.dpi.hostCase}`);
        const b = p.dpi.box;
        if (!b) out.push(c.dim("box on the wire: not described by the record (transparent mode: the proxy datapath)"));
        else out.push(`box on the wire (the on-path datapath, its default in transparent mode): from ${b.flowFrom}, SYN payload ${b.synPayload}, checksum ${b.checksum}, sequence ${b.sequence}, TTL ${b.ttl}, ${b.inspect}${b.inspect === "reassemble" ? ` (${b.bufferLimit} bytes)` : ""}, teardown ${b.teardown}, hops ${b.hops.client}+${b.hops.server}, injected TTL ${b.injected.ttl} IP ID ${b.injected.ipId}${b.sources ? c.dim(`; ${b.sources}`) : ""}`);
        out.push("", c.bold("rules") + c.dim(" (first match wins)"));
        for (const rule of p.rules) {
          out.push(`  ${c.cyan(rule.id)}: ${describeMatch(rule.match)} -> ${c.red(describeAction(rule.action))}`);
          const extra: string[] = [];
          if (rule.windows) extra.push(rule.windows.map(describeWindow).join(" or "));
          if (rule.networks.join() !== p.networks.join()) extra.push(`networks ${rule.networks.join(", ")}`);
          if (rule.probability !== undefined) extra.push(`probability ${rule.probability}`);
          if (rule.residual) extra.push(`residual ${rule.residual.ms / 1000}s by ${rule.residual.key}${rule.residual.renew ? ", renewed by retries" : ""}`);
          if (rule.seed) extra.push(`seed ${rule.seed}${rule.confidence ? ` [${rule.confidence}]` : ""}`);
          if (extra.length) out.push(`    ${c.dim(extra.join("; "))}`);
        }
        const variants = Object.entries(p.variants);
        if (variants.length) {
          out.push("", c.bold("variants") + c.dim(" (--variant NAME)"));
          for (const [name, v] of variants) out.push(`  ${name}${v.description ? `: ${v.description}` : ""}`);
        }
        const cited = [...new Set([...p.sources, ...p.rules.map((r) => r.seed).filter((s): s is string => !!s)])];
        if (cited.length) {
          out.push("", c.bold("sources"));
          for (const id of cited) {
            const s = seeds.seeds.get(id);
            out.push(`  ${id}${s ? `: ${s.title} [${s.confidence}]` : ""}`);
            for (const src of s?.sources ?? []) out.push(`    ${c.dim(`${src.publisher}, "${src.title}", ${src.date}${src.url ? `, ${src.url}` : ""}`)}`);
          }
        }
        if (p.expect.length) {
          out.push("", c.bold("a probe should observe"));
          for (const e of p.expect) out.push(`  ${e.target}: ${e.observe}${e.networks ? c.dim(` on ${e.networks.join(", ")}`) : ""}`);
        }
        process.stdout.write(`${out.join("\n")}\n`);
      } catch (err) {
        fail(err);
      }
    });
}
