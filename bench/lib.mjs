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
