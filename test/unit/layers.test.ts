// The layering docs/ARCHITECTURE.md draws, checked on the sources: every import of a file
// under src/ goes to its own folder or to a folder of a lower layer, and no files import
// each other in a cycle (type-only imports count too: they couple what a change touches).
import { describe, expect, it } from "vitest";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { ROOT } from "../helpers/cli.js";

/** Layers, lowest first. A folder may import its own layer's folder and lower layers only; folders of one layer never import each other. */
export const LAYERS: string[][] = [
  ["util", "paths.ts"],
  ["dns"],
  ["seeds"],
  ["profile"],
  ["policy", "clock", "events", "pki", "record"],
  ["world"],
  ["runtime", "dpi"],
  ["resolver", "interceptor", "relay", "transparent", "box"],
  ["lab"],
  ["probe"],
  ["conformance", "control", "testcontainers"],
  ["api.ts"],
  ["cli"],
  ["index.ts"],
];

const SRC = join(ROOT, "src");

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : n.endsWith(".ts") ? [p] : [];
  });
}

/** The unit a file belongs to: its top folder under src/, or its own name at the top. */
function unitOf(file: string): string {
  return relative(SRC, file).split("/")[0]!;
}

function layerOf(unit: string): number {
  const i = LAYERS.findIndex((l) => l.includes(unit));
  if (i < 0) throw new Error(`src/${unit} is in no layer: add it to LAYERS (test/unit/layers.test.ts) and to docs/ARCHITECTURE.md`);
  return i;
}

/** Relative imports of a file (static, dynamic, re-exports, type-only), as absolute .ts paths. */
export function importsOf(file: string): string[] {
  const text = readFileSync(file, "utf8");
  const out: string[] = [];
  for (const m of text.matchAll(/(?:from\s+|import\s*\(\s*|import\s+)"(\.{1,2}\/[^"]+)"/g)) {
    out.push(resolve(dirname(file), m[1]!).replace(/\.js$/, ".ts"));
  }
  return out;
}

const all = files(SRC);
const graph = new Map(all.map((f) => [f, importsOf(f)]));

describe("the layers of src/", () => {
  it("are the table docs/ARCHITECTURE.md draws", () => {
    const doc = readFileSync(join(ROOT, "docs", "ARCHITECTURE.md"), "utf8");
    const rows = [...doc.matchAll(/^\| (\d+) \| ([^|]+) \|/gm)].map((m) => ({ n: Number(m[1]), units: [...m[2]!.matchAll(/`([^`]+)`/g)].map((u) => u[1]!.replace(/\/$/, "")) }));
    expect(rows.sort((a, b) => a.n - b.n).map((r) => r.units.sort())).toEqual(LAYERS.map((l) => [...l].sort()));
  });

  it("every import goes to the same folder or a lower layer", () => {
    const wrong: string[] = [];
    for (const [file, deps] of graph) {
      const from = unitOf(file);
      for (const dep of deps) {
        const to = unitOf(dep);
        if (to === from) continue;
        if (layerOf(to) >= layerOf(from)) wrong.push(`${relative(SRC, file)} -> ${relative(SRC, dep)} (${from} is layer ${layerOf(from)}, ${to} is layer ${layerOf(to)})`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it("no files import each other in a cycle", () => {
    const state = new Map<string, 1 | 2>();
    const cycles: string[] = [];
    const visit = (f: string, stack: string[]): void => {
      state.set(f, 1);
      for (const d of graph.get(f) ?? []) {
        if (!graph.has(d)) continue;
        if (state.get(d) === 1) cycles.push([...stack.slice(stack.indexOf(d)), d].map((x) => relative(SRC, x)).join(" -> "));
        else if (!state.has(d)) visit(d, [...stack, d]);
      }
      state.set(f, 2);
    };
    for (const f of graph.keys()) if (!state.has(f)) visit(f, [f]);
    expect(cycles).toEqual([]);
  });

  it("every import resolves to a file (the check reads what is really there)", () => {
    const missing = [...graph].flatMap(([f, deps]) => deps.filter((d) => !graph.has(d)).map((d) => `${relative(SRC, f)} -> ${relative(SRC, d)}`));
    expect(missing).toEqual([]);
  });
});
