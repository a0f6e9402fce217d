// `chokepoint score`: a probe's verdicts against the lab's event log (src/probe/score.ts).
import type { Command } from "commander";
import { BLOCKING_CLASSES, readEvents, readResults, score } from "../../probe/score.js";
import { fail } from "../errors.js";
import { c } from "../style.js";

interface ScoreOptions { events?: string; json?: boolean; network?: string; window: string; minRecall?: string; maxFalsePositive?: string }

function fraction(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0 || n > 1) throw new Error(`${flag} takes a fraction from 0 to 1, got "${v}"`);
  return n;
}

const pct = (v: number | null): string => (v === null ? "-" : `${(v * 100).toFixed(1)}%`);

export function scoreCommand(program: Command): void {
  program.command("score")
    .description("score a probe's verdicts against the lab's event log (the ground truth): right, wrong, no ground truth; a confusion matrix; precision and recall of \"blocked\"")
    .argument("<measurements...>", "result files: OONI measurements (JSON or JSON Lines, as ooniprobe and miniooni write them), or {target, time, network?, verdict} as JSON Lines or CSV")
    .option("--events <file>", "the lab's event log (up --events FILE)")
    .option("--network <id>", "the network of measurements that do not say (OONI's carry annotations.chokepoint_network)")
    .option("--window <seconds>", "how long after a measurement's start (and runtime) a decision still belongs to it", "15")
    .option("--min-recall <x>", "exit 1 when the recall of blocked targets is below this fraction")
    .option("--max-false-positive <y>", "exit 1 when the share of unblocked targets called blocked is above this fraction")
    .option("--json", "{measurements, right, wrong, unknown, confusion, precision, recall, falsePositiveRate, rows}")
    .action((files: string[], o: ScoreOptions) => {
      try {
        if (!o.events) throw new Error("--events FILE: the lab's event log to score against (start the lab with --events FILE)");
        const minRecall = fraction(o.minRecall, "--min-recall");
        const maxFp = fraction(o.maxFalsePositive, "--max-false-positive");
        const windowS = Number(o.window);
        if (!Number.isFinite(windowS) || windowS < 0 || windowS > 3600) throw new Error(`--window takes seconds from 0 to 3600, got "${o.window}"`);
        const { events, skipped } = readEvents(o.events);
        const results = files.map((f) => readResults(f, o.network));
        const measurements = results.flatMap((r) => r.measurements);
        const otherTests: Record<string, number> = {};
        for (const r of results) for (const [k, n] of Object.entries(r.skipped)) otherTests[k] = (otherTests[k] ?? 0) + n;
        if (Object.keys(otherTests).length) process.stderr.write(`chokepoint: not scored (score reads web_connectivity; chokepoint expect service:NAME gives the other tests' keys): ${Object.entries(otherTests).map(([k, n]) => `${n} ${k}`).join(", ")}\n`);
        const s = score(measurements, events, windowS * 1000);
        if (o.json) process.stdout.write(`${JSON.stringify(s)}\n`);
        else {
          for (const r of s.rows) {
            const mark = r.result === "right" ? c.green("right") : r.result === "wrong" ? c.red("wrong") : c.dim("no ground truth");
            process.stdout.write(`${mark.padEnd(16)} ${r.target}${r.network ? ` on ${r.network}` : ""} at ${r.start}: said ${r.verdict}${r.truth ? `, truth ${r.truth}` : ""}  ${c.dim(r.reason)}\n`);
          }
          process.stdout.write(`\n${s.measurements} measurements: ${s.right} right, ${s.wrong} wrong, ${s.unknown} without ground truth\n`);
          process.stdout.write(`confusion (rows: truth, columns: the probe's verdict)\n${"".padEnd(14)}${BLOCKING_CLASSES.map((k) => k.padStart(14)).join("")}\n`);
          for (const t of BLOCKING_CLASSES) process.stdout.write(`${t.padEnd(14)}${BLOCKING_CLASSES.map((v) => String(s.confusion[t][v]).padStart(14)).join("")}\n`);
          process.stdout.write(`blocked: precision ${pct(s.precision)}, recall ${pct(s.recall)}; false positives ${pct(s.falsePositiveRate)} of the unblocked\n`);
          if (skipped) process.stdout.write(c.dim(`(${skipped} lines of the event log were not events)\n`));
        }
        const missed: string[] = [];
        if (minRecall !== undefined && (s.recall ?? 1) < minRecall) missed.push(`recall ${pct(s.recall)} < ${pct(minRecall)}`);
        if (maxFp !== undefined && (s.falsePositiveRate ?? 0) > maxFp) missed.push(`false positives ${pct(s.falsePositiveRate)} > ${pct(maxFp)}`);
        // Thresholds judged on nothing would pass silently.
        if ((minRecall !== undefined || maxFp !== undefined) && s.measurements > 0 && s.right + s.wrong === 0) missed.push("no measurement has ground truth (was the lab's --events on, are the networks and times right?)");
        if (missed.length) {
          process.stderr.write(`chokepoint: threshold missed: ${missed.join("; ")}\n`);
          process.exitCode = 1;
        }
      } catch (err) {
        fail(err);
      }
    });
}
