import { describe, expect, it } from "vitest";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { loadProfile } from "../../src/profile/load.js";
import { loadSeeds } from "../../src/seeds/catalog.js";
import { formatError } from "../../src/util/yaml-source.js";
import { regimesDoc } from "../../src/record/regimes-doc.js";
import { timeline } from "../../src/record/timeline.js";
import { ROOT } from "../helpers/cli.js";

const seeds = loadSeeds([join(ROOT, "seeds")]);
const regimeFiles = readdirSync(join(ROOT, "profiles")).filter((f) => f.endsWith(".yaml"));

describe("the project's data", () => {
  it("seeds are valid, each with a source and a confidence label", () => {
    expect(seeds.errors.map(formatError)).toEqual([]);
    expect(seeds.seeds.size).toBeGreaterThan(0);
    for (const s of seeds.seeds.values()) {
      expect(s.sources.length).toBeGreaterThan(0);
      expect(["P", "O", "N", "S", "U"]).toContain(s.confidence);
    }
  });
  it.each(regimeFiles)("profiles/%s validates and cites a seed on every rule", (file) => {
    const r = loadProfile(join(ROOT, "profiles", file), { seeds, requireSeeds: true });
    expect(r.errors.map(formatError)).toEqual([]);
    for (const rule of r.profile!.rules) expect(seeds.seeds.has(rule.seed!)).toBe(true);
    for (const v of Object.keys(r.profile!.variants)) {
      const rv = loadProfile(join(ROOT, "profiles", file), { seeds, requireSeeds: true, variant: v });
      expect(rv.errors.map(formatError)).toEqual([]);
    }
  });
  it("profiles/schema.json is generated from the schema", () => {
    const schema = JSON.parse(readFileSync(join(ROOT, "profiles/schema.json"), "utf8"));
    expect(schema.properties.rules).toBeDefined();
    expect(schema.required).toEqual(expect.arrayContaining(["id", "title", "rules"]));
  });
  it("docs/regimes.md is what the seeds and profiles generate (npm run docs)", () => {
    expect(readFileSync(join(ROOT, "docs/regimes.md"), "utf8")).toBe(regimesDoc("kz"));
  });
  it("the timeline lists every KZ seed in order, with the profiles that replay it", () => {
    const t = timeline("kz");
    expect(t.map((e) => e.seed.id)).toEqual([...seeds.seeds.values()].filter((s) => s.id.startsWith("kz-")).sort((a, b) => a.start - b.start || a.id.localeCompare(b.id)).map((s) => s.id));
    expect(t.find((e) => e.seed.id === "kz-2011-06-wordpress")!.profiles.map((p) => p.id)).toEqual(["kz-2011-wordpress"]);
  });
});
