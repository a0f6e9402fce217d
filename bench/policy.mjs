// Policy engine: decide() time with 1k, 100k and 1M domain rules (must stay flat), compile
// time and heap for 1M names, and the load time of a 1M-name list file.
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compilePolicy } from "../dist/policy/engine.js";
import { loadList } from "../dist/profile/lists.js";
import { goal, median, mib, percentile, table } from "./lib.mjs";

const RUNS = 5;
const BATCH = 100;
const QUERIES = 20_000;
const NOW = Date.parse("2024-01-01T00:00:00Z");
const TLDS = ["kz", "ru", "com", "net", "org", "info", "io", "example", "test", "de"];

// Deterministic pseudo-random names (mulberry32).
function rng(seed) {
  return () => {
    seed |= 0; seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
function names(n, seed) {
  const r = rng(seed);
  const out = new Array(n);
  for (let i = 0; i < n; i++) {
    const len = 4 + Math.floor(r() * 9);
    let s = "";
    for (let j = 0; j < len; j++) s += String.fromCharCode(97 + Math.floor(r() * 26));
    out[i] = `${s}${i}.${TLDS[i % TLDS.length]}`;
  }
  return out;
}

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
      q.push({ name: j % 2 ? `www.${list[j]}` : list[j], qtype: "A" });
    } else q.push({ name: `host${i}.allowed${i % 97}.example`, qtype: "A" });
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
for (const n of [1_000, 100_000, 1_000_000]) {
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
  const runMedians = [], runP99 = [];
  let blocked = 0;
  for (let r = 0; r < RUNS; r++) {
    const { samples, blocked: b } = timeDecide(policy, qs);
    runMedians.push(median(samples));
    runP99.push(percentile(samples, 99));
    blocked = b;
  }
  medians[n] = median(runMedians);
  rows.push({
    names: n.toLocaleString("en"), "decide median": `${(medians[n] / 1000).toFixed(3)} µs`, "decide p99": `${(median(runP99) / 1000).toFixed(3)} µs`,
    blocked: `${((blocked / qs.length) * 100).toFixed(0)}%`, compile: `${compileMs.toFixed(0)} ms`, "heap (entries + index)": mib(heap),
  });
}
console.log(`decide(): per-call time from batches of ${BATCH}; median of ${RUNS} runs of ${QUERIES.toLocaleString("en")} queries (half blocked names or their www. subdomain, half allowed)`);
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

const ratio = medians[1_000_000] / medians[1_000];
console.log("");
goal("flat: 1M-name median within 2x of 1k", ratio <= 2, `ratio ${ratio.toFixed(2)}`);
goal("1M-name median <= 2 µs", medians[1_000_000] <= 2000, `${(medians[1_000_000] / 1000).toFixed(3)} µs`);
