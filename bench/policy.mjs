// Policy engine: decide() time with 1k, 100k and 1M domain rules (must stay flat), compile
// time and heap for 1M names, and the load time of a 1M-name list file.
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compilePolicy } from "../dist/policy/engine.js";
import { loadList } from "../dist/profile/lists.js";
import { goal, median, mib, percentile, randomNames, rng, table } from "./lib.mjs";

const RUNS = 7;
const BATCH = 100;
const QUERIES = 20_000;
const NOW = Date.parse("2024-01-01T00:00:00Z");
const TLDS = ["kz", "ru", "com", "net", "org", "info", "io", "example", "test", "de"];

const names = (n, seed) => randomNames(n, seed, TLDS);

function profileWith(list) {
  // Half exact names, half names with their subdomains, as blocklists mix them.
  const entries = list.map((n, i) => (i % 2 ? `.${n}` : n));
  return {
    id: "bench", title: "bench", country: "ZZ", timezone: "UTC", period: { start: 0 }, networks: ["default"], sources: [],
    dpi: { inspect: "first-segment", reassembleBytes: 16384, reassembleTimeoutMs: 2000, hostCase: "insensitive", direction: "client" },
    world: { hosts: {}, nonexistent: [] }, variants: {}, expect: [],
    rules: [
      { id: "keep", profile: "bench", match: { domain: ["www.allowed0.example"] }, action: { type: "allow" }, networks: ["default"] },
      { id: "list", profile: "bench", match: { domain: entries }, action: { type: "nxdomain" }, networks: ["default"] },
      { id: "evening", profile: "bench", match: { sni: ["social.example"] }, action: { type: "drop" }, networks: ["default"],
        windows: [{ daily: { fromMs: 72e6, toMs: 79.2e6 }, timezone: "Asia/Almaty" }] },
    ],
  };
}

function queries(list) {
  const r = rng(7);
  const q = [];
  for (let i = 0; i < QUERIES; i++) {
    if (i % 2) {
      // A blocked name: the exact entry itself, or a subdomain of a suffix entry.
      const j = Math.floor(r() * list.length);
      // A fresh string, as the resolver parses from each packet (not the list's own object).
      q.push({ name: Buffer.from(j % 2 ? `www.${list[j]}` : list[j]).toString("latin1"), qtype: "A" });
    } else q.push({ name: Buffer.from(`host${i}.allowed${i % 97}.example`).toString("latin1"), qtype: "A" });
  }
  return q;
}

function timeDecide(policy, qs) {
  const samples = [];
  let blocked = 0;
  for (let b = 0; b + BATCH <= qs.length; b += BATCH) {
    const t0 = process.hrtime.bigint();
    for (let i = b; i < b + BATCH; i++) if (policy.decide(qs[i], NOW, "default").rule === "list") blocked++;
    samples.push(Number(process.hrtime.bigint() - t0) / BATCH);
  }
  return { samples, blocked };
}

const rows = [];
const medians = {};
const all = names(1_000_000, 42);
const sizes = [1_000, 100_000, 1_000_000];
const built = [];
for (const n of sizes) {
  const list = all.slice(0, n);
  global.gc?.();
  const heap0 = process.memoryUsage().heapUsed;
  const profile = profileWith(list);
  const t0 = performance.now();
  const policy = compilePolicy([profile]);
  const compileMs = performance.now() - t0;
  global.gc?.();
  const heap = process.memoryUsage().heapUsed - heap0;
  const qs = queries(list);
  timeDecide(policy, qs); // warm-up
  built.push({ n, policy, qs, compileMs, heap, medians: [], p99: [], blocked: 0 });
}
// Sizes are timed in turn, round after round, so that drift on a shared machine hits all alike.
for (let r = 0; r < RUNS; r++) {
  for (const b of built) {
    const { samples, blocked } = timeDecide(b.policy, b.qs);
    b.medians.push(median(samples));
    b.p99.push(percentile(samples, 99));
    b.blocked = blocked;
  }
}
for (const b of built) {
  medians[b.n] = median(b.medians);
  rows.push({
    names: b.n.toLocaleString("en"), "decide median": `${(medians[b.n] / 1000).toFixed(3)} µs`, "decide p99": `${(median(b.p99) / 1000).toFixed(3)} µs`,
    blocked: `${((b.blocked / b.qs.length) * 100).toFixed(0)}%`, compile: `${b.compileMs.toFixed(0)} ms`, "heap (entries + index)": mib(b.heap),
  });
}
const ratios = built[2].medians.map((m, i) => m / built[0].medians[i]);
console.log(`decide(): per-call time from batches of ${BATCH}; sizes timed in turn, median of ${RUNS} rounds of ${QUERIES.toLocaleString("en")} queries (half blocked names or their www. subdomain, half allowed)`);
table(rows);

// Load a 1M-name list file the way a profile's `match: { domain: { file } }` does.
const dir = mkdtempSync(join(tmpdir(), "chokepoint-bench-"));
const file = join(dir, "blocked.txt");
writeFileSync(file, `# 1M names\n${all.join("\n")}\n`);
const loads = [];
for (let r = 0; r < 3; r++) {
  const t0 = performance.now();
  const res = loadList(file, { kind: "name" });
  loads.push(performance.now() - t0);
  if (res.entries.length !== 1_000_000) throw new Error(`loaded ${res.entries.length} names`);
}
rmSync(dir, { recursive: true, force: true });
console.log(`\nload of a 1,000,000-name list file (${mib(all.join("\n").length)}): median ${median(loads).toFixed(0)} ms of 3`);

const ratio = median(ratios);
console.log("");
goal("flat: 1M-name median within 2x of 1k", ratio <= 2, `ratio ${ratio.toFixed(2)} (median of per-round ratios: ${ratios.map((x) => x.toFixed(2)).join(" ")})`);
goal("1M-name median <= 2 µs", medians[1_000_000] <= 2000, `${(medians[1_000_000] / 1000).toFixed(3)} µs`);
