import type { Command } from "commander";
import { runConformance, type Row } from "../../conformance/run.js";
import { fail } from "../errors.js";
import { c } from "../style.js";

const COLUMNS: [keyof Row, string][] = [["profile", "profile"], ["target", "target"], ["network", "network"], ["expected", "expected"], ["observed", "observed"], ["client", "real clients"], ["transparent", "transparent"], ["computed", "expect"], ["pass", "pass"], ["detail", "detail"]];

function cell(r: Row, k: keyof Row): string {
  if (k === "pass") return r.pass ? "PASS" : "FAIL";
  if (k === "profile") return r.variant ? `${r.profile} (${r.variant})` : r.profile;
  if (k === "client") return r.client ? `${r.client.observed}${r.client.pass ? "" : " (differs)"}` : "-";
  if (k === "computed") return r.computed ? `${r.computed.observe}${r.computed.agrees ? "" : " (differs)"}` : "-";
  if (k === "transparent") return r.transparent ? `${r.transparent.observed}${r.transparent.datapath === "onpath" ? " (on-path)" : ""}${r.transparent.pass ? "" : " (differs)"}` : "-";
  if (k === "detail") {
    const extra = [r.client && !r.client.pass ? r.client.detail : "", r.transparent && !r.transparent.pass ? `transparent: ${r.transparent.detail}` : ""].filter(Boolean);
    return [r.detail, ...extra].join("; ");
  }
  return String(r[k] ?? "");
}

export function conformanceCommand(program: Command): void {
  program.command("conformance")
    .description("start the lab for each regime profile and check that probes see what its `expect` says (exit 1 on any mismatch)")
    .option("--profile <id|file...>", "only these profiles: ids or files (repeatable, or comma-separated)")
    .option("--no-ordinary", "skip the check that ordinary sites stay reachable on every network")
    .option("--json", "one JSON object a row")
    .option("--no-clients", "skip the cross-check with dig, curl and openssl")
    .option("--transparent", "Linux, root: run the real clients again from each network's namespace in transparent mode (a column of its own)")
    .action(async (o: { profile?: string[]; json?: boolean; clients: boolean; ordinary: boolean; transparent?: boolean }) => {
      try {
        const rows: Row[] = [];
        await runConformance({
          ...(o.profile ? { profiles: o.profile.flatMap((p) => p.split(",")).filter(Boolean) } : {}),
          clients: o.clients,
          ordinary: o.ordinary,
          ...(o.transparent ? { transparent: true } : {}),
          onProfile: (id, variant) => { if (!o.json) process.stderr.write(c.dim(`measuring ${id}${variant ? ` (variant ${variant})` : ""}...\n`)); },
          onRow: (r) => { rows.push(r); if (o.json) process.stdout.write(`${JSON.stringify(r)}\n`); },
        });
        if (!o.json) {
          const columns = COLUMNS.filter(([k]) => k !== "transparent" || o.transparent);
          const widths = columns.map(([k, h]) => Math.max(h.length, ...rows.map((r) => cell(r, k).length)));
          const line = (cells: string[]): string => cells.map((x, i) => x.padEnd(widths[i]!)).join("  ").trimEnd();
          process.stdout.write(`${line(columns.map(([, h]) => h))}\n`);
          for (const r of rows) {
            const text = line(columns.map(([k]) => cell(r, k)));
            process.stdout.write(`${r.pass ? text : c.red(text)}\n`);
          }
          const failed = rows.filter((r) => !r.pass).length;
          process.stdout.write(`${rows.length} rows, ${rows.length - failed} pass, ${failed} fail\n`);
        }
        process.exit(rows.every((r) => r.pass) ? 0 : 1);
      } catch (err) {
        fail(err);
      }
    });
}
