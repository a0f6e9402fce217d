// Small helpers shared by the benchmark suites.
export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)] : NaN;
}
export function percentile(xs, p) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] : NaN;
}
export function table(rows) {
  const cols = Object.keys(rows[0] ?? {});
  const width = cols.map((c) => Math.max(c.length, ...rows.map((r) => String(r[c]).length)));
  const line = (vals) => vals.map((v, i) => String(v).padEnd(width[i])).join("  ");
  console.log(line(cols));
  for (const r of rows) console.log(line(cols.map((c) => r[c])));
}
export function goal(label, ok, detail) {
  console.log(`${ok ? "PASS" : "MISS"}  ${label}${detail ? `: ${detail}` : ""}`);
  return ok;
}
export const mib = (bytes) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;

/** A seeded pseudo-random generator (mulberry32): the same inputs on every run. */
export function rng(seed) {
  return () => {
    seed |= 0; seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `n` deterministic blocklist-like names: random letters, the index, one of ten TLDs. */
export function randomNames(n, seed, tlds = ["kz", "ru", "com", "net", "org", "info", "io", "example", "test", "de"]) {
  const r = rng(seed);
  const out = new Array(n);
  for (let i = 0; i < n; i++) {
    const len = 4 + Math.floor(r() * 9);
    let s = "";
    for (let j = 0; j < len; j++) s += String.fromCharCode(97 + Math.floor(r() * 26));
    out[i] = `${s}${i}.${tlds[i % tlds.length]}`;
  }
  return out;
}
