// Resolver: dnsperf (bounded in time) against the lab loaded with a 1,000,000-name list
// (half the queried names blocked), and in the same run against unbound (1 thread, the same
// list as local-zone entries) and dnsmasq (the same list), all on loopback. Prints
// queries/s, p50/p99 latency at a fixed 2,000 queries/s, memory and start time, and ratios.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, createWriteStream } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { goal, median, percentile, randomNames, rng, table } from "./lib.mjs";

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const LIST = Number(process.env.BENCH_NAMES ?? 1_000_000);
const QUERIES = 100_000;

for (const tool of ["dnsperf", "unbound", "dnsmasq"]) {
  if (spawnSync("which", [tool]).status !== 0) {
    console.error(`bench resolver: ${tool} is missing (Debian: apt-get install dnsperf unbound dnsmasq-base)`);
    process.exit(2);
  }
}

const dir = mkdtempSync(join(tmpdir(), "chokepoint-bench-dns-"));
const cleanup = [];
process.on("exit", () => { for (const c of cleanup) try { c(); } catch {} rmSync(dir, { recursive: true, force: true }); });

// Deterministic names (as in the policy benchmark).
const names = randomNames(LIST, 42, ["kz", "ru", "com", "net", "org", "info", "io", "test", "de", "su"]);
writeFileSync(join(dir, "blocked.txt"), names.join("\n") + "\n");
const qr = rng(7);
const queries = [];
for (let i = 0; i < QUERIES; i++) {
  if (i % 2) { const n = names[Math.floor(qr() * LIST)]; queries.push(`${i % 4 === 1 ? n : `www.${n}`} A`); }
  else queries.push(`host${i}.allowed${i % 97}.example A`);
}
writeFileSync(join(dir, "queries.txt"), queries.join("\n") + "\n");

// The lab: a profile whose one rule loads the list (names and their subdomains -> NXDOMAIN).
writeFileSync(join(dir, "bench.yaml"), `id: bench-dns\ntitle: bench\ncountry: ZZ\ntimezone: UTC\nperiod: { start: "2000-01-01" }\nnetworks: [default]\nrules:\n  - { id: list, match: { domain: { file: blocked.txt, mode: suffix } }, action: nxdomain }\n`);

// unbound: one thread, every name an always_nxdomain local zone; allowed names answered locally.
const ub = createWriteStream(join(dir, "unbound.conf"));
ub.write(`server:\n  interface: 127.0.0.1\n  port: 25353\n  num-threads: 1\n  do-daemonize: no\n  chroot: ""\n  username: ""\n  pidfile: ""\n  use-syslog: no\n  logfile: ""\n  verbosity: 0\n  access-control: 127.0.0.0/8 allow\n  do-ip6: no\n  module-config: "iterator"\n  local-zone: "example." redirect\n  local-data: "example. 300 IN A 198.19.0.1"\n`);
for (const n of names) ub.write(`  local-zone: "${n}." always_nxdomain\n`);
await new Promise((res) => ub.end(res));
const dm = createWriteStream(join(dir, "dnsmasq.conf"));
dm.write("address=/example/198.19.0.1\n");
for (const n of names) dm.write(`address=/${n}/\n`);
await new Promise((res) => dm.end(res));

function rssOf(pid) {
  try { return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))[1]) * 1024; } catch { return NaN; }
}

async function dig(port) {
  return spawnSync("dig", ["@127.0.0.1", "-p", String(port), "+time=1", "+tries=1", "+short", queries[1].split(" ")[0]], { encoding: "utf8" });
}

/** Starts a server; resolves once it answers a query over UDP. */
async function start(name, cmd, args, port) {
  const t0 = performance.now();
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
  cleanup.push(() => child.kill("SIGKILL"));
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  let p = port;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${name} exited: ${out}`);
    if (p === undefined) {
      const line = out.split("\n").find((l) => l.startsWith("{\"ready\""));
      if (line) p = JSON.parse(line).endpoints.dns.port;
    }
    if (p !== undefined && (await dig(p)).status === 0) break;
    if (performance.now() - t0 > 120_000) throw new Error(`${name} did not start in 120 s: ${out}`);
    await new Promise((res) => setTimeout(res, 100));
  }
  return { child, port: p, startMs: performance.now() - t0, rss: rssOf(child.pid) };
}

function dnsperf(port, args) {
  const res = spawnSync("dnsperf", ["-s", "127.0.0.1", "-p", String(port), "-d", join(dir, "queries.txt"), "-c", "1", "-T", "1", ...args], { encoding: "utf8", maxBuffer: 256 << 20 });
  return res.stdout + res.stderr;
}
function throughput(port) {
  const out = dnsperf(port, ["-l", String(SECONDS), "-q", "100"]);
  return Number(/Queries per second:\s+([\d.]+)/.exec(out)?.[1] ?? NaN);
}
function latency(port) {
  const out = dnsperf(port, ["-l", "4", "-Q", "2000", "-v"]);
  const lat = [...out.matchAll(/^> \S+ \S+ \S+ ([\d.]+)$/gm)].map((m) => Number(m[1]) * 1000);
  const nx = (out.match(/^> NXDOMAIN /gm) ?? []).length;
  return { p50: percentile(lat, 50), p99: percentile(lat, 99), blocked: nx / Math.max(1, lat.length) };
}

const servers = [
  { name: "chokepoint", cmd: process.execPath, args: [...(process.env.BENCH_NODE_FLAGS ? process.env.BENCH_NODE_FLAGS.split(" ") : []), "bin/chokepoint.js", "up", "--profile", join(dir, "bench.yaml"), "--ports", "auto", "--json", "--dns-workers", process.env.BENCH_DNS_WORKERS ?? "1"] },
  { name: "unbound", cmd: "unbound", args: ["-d", "-c", join(dir, "unbound.conf")], port: 25353 },
  { name: "dnsmasq", cmd: "dnsmasq", args: ["-k", "--port=25354", "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv", "--no-hosts", "--user=root", "-C", join(dir, "dnsmasq.conf")], port: 25354 },
];
process.env.CHOKEPOINT_CONFDIR = join(dir, "conf");
const workers = process.env.BENCH_DNS_WORKERS ?? "1";
servers[0].name = `chokepoint (${workers} proc)`;
console.log(`${LIST.toLocaleString("en")} blocked names; ${QUERIES.toLocaleString("en")} A queries, half blocked; dnsperf 1 client, 100 outstanding, ${SECONDS} s per run`);
console.log(`the three servers run side by side and are measured in turn, ${RUNS} rounds; ratios are medians of per-round ratios`);
const started = [];
for (const s of servers) started.push({ ...s, srv: await start(s.name, s.cmd, s.args, s.port) });
// Warm-up, not counted: one pass over the query file fills the caches (world answers) and the JIT.
for (const s of started) dnsperf(s.srv.port, ["-l", "6", "-q", "100"]);
const runs = Object.fromEntries(started.map((s) => [s.name, []]));
for (let i = 0; i < RUNS; i++) for (const s of started) runs[s.name].push(throughput(s.srv.port));
const rows = [];
for (const s of started) {
  const lat = latency(s.srv.port);
  rows.push({
    server: s.name, "queries/s": Math.round(median(runs[s.name])).toLocaleString("en"), runs: runs[s.name].map((x) => Math.round(x)).join(" "),
    "p50 @2k qps": `${lat.p50.toFixed(3)} ms`, "p99 @2k qps": `${lat.p99.toFixed(3)} ms`, blocked: `${(lat.blocked * 100).toFixed(0)}%`,
    start: `${(s.srv.startMs / 1000).toFixed(1)} s`, RSS: `${(s.srv.rss / 2 ** 20).toFixed(0)} MiB`,
  });
}
for (const s of started) s.srv.child.kill("SIGTERM");
table(rows);
const ours = runs[servers[0].name];
const vsUnbound = median(ours.map((q, i) => q / runs.unbound[i])), vsDnsmasq = median(ours.map((q, i) => q / runs.dnsmasq[i]));
console.log(`ratios: chokepoint/unbound ${vsUnbound.toFixed(2)}, chokepoint/dnsmasq ${vsDnsmasq.toFixed(1)}`);
goal("at least 0.5 of unbound's queries/s", vsUnbound >= 0.5, vsUnbound.toFixed(2));
goal("at least 10x dnsmasq's queries/s", vsDnsmasq >= 10, vsDnsmasq.toFixed(1));
