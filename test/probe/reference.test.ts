// The reference probe scored against the ground truth, on every shipped regime profile
// (npm run test:probe, in .ci/run): for each profile and variant, a lab with its control API
// and event log; each web target of its expect rows measured at the row's instant from the
// row's networks by `runProbe` (through the control API and the explicit entries only, as any
// probe would), and the popular sites of conformance's ordinary check on every network; then
// `score` reads the measurements and the lab's log. Done when every measurement is right.
import { describe, expect, it } from "vitest";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startLab } from "../../src/api.js";
import { scanProfiles } from "../../src/profile/catalog.js";
import { loadProfile } from "../../src/profile/load.js";
import { runProbe } from "../../src/probe/run.js";
import { readEvents, readMeasurements, score } from "../../src/probe/score.js";
import { ORDINARY_TARGETS } from "../../src/conformance/run.js";
import type { OoniMeasurement } from "../../src/probe/web.js";

const dir = mkdtempSync(join(tmpdir(), "chokepoint-reference-"));
const web = (t: string): boolean => /^https?:\/\//.test(t);

/** Every (profile, variant) with web rows, and the rows. */
const cases = scanProfiles().filter((k) => k.kind === "regime").flatMap((k) => {
  const p = loadProfile(k.file).profile!;
  const variants = [...new Set(p.expect.map((e) => e.variant))];
  return variants.map((variant) => ({ id: k.id, file: k.file, variant, rows: p.expect.filter((e) => e.variant === variant && web(e.target)) }))
    .filter((c) => c.rows.length);
});

describe("the reference probe, scored against the ground truth", () => {
  it.each(cases.map((c) => [`${c.id}${c.variant ? ` (${c.variant})` : ""}`, c] as const))("%s: every measurement right", async (_name, c) => {
    const profile = (c.variant ? loadProfile(c.file, { variant: c.variant }) : loadProfile(c.file)).profile!;
    const noon = profile.period.start + 12 * 3_600_000;
    const first = profile.period.end !== undefined && noon >= profile.period.end ? profile.period.start : noon;
    const events = join(dir, `${c.id}-${c.variant ?? "base"}.jsonl`);
    const lab = await startLab({ profiles: [c.file], ...(c.variant ? { variant: c.variant } : {}), at: c.rows[0]!.at ?? first, ports: "auto", events });
    const control = `http://${lab.endpoints.control!.host}:${lab.endpoints.control!.port}`;
    const measurements: OoniMeasurement[] = [];
    try {
      for (const row of c.rows) {
        lab.seek(row.at ?? first); // and a clean residual table, as for each conformance row
        measurements.push(...await runProbe([row.target], { control, networks: row.networks ?? [lab.network] }));
      }
      lab.seek(first);
      measurements.push(...await runProbe(ORDINARY_TARGETS.map((h) => `https://${h}/`), { control, networks: profile.networks }));
    } finally {
      await lab.stop(); // flushes the event log
    }
    const file = join(dir, `${c.id}-${c.variant ?? "base"}.measurements.jsonl`);
    writeFileSync(file, measurements.map((m) => JSON.stringify(m)).join("\n") + "\n");
    const s = score(readMeasurements(file), readEvents(events).events);
    const bad = s.rows.filter((r) => r.result !== "right").map((r) => `${r.result}: ${r.target} on ${r.network}: said ${r.verdict}, truth ${r.truth ?? "-"} (${r.reason})`);
    expect(bad).toEqual([]);
    expect(s.right).toBe(measurements.length);
    expect(readFileSync(file, "utf8").split("\n").filter(Boolean)).toHaveLength(measurements.length);
  });
});
