// Interceptor: wrk keep-alive requests/s, new connections/s and a 1 GiB transfer through the
// interceptor (allowed flows) against direct to the world's origin, in the same run; and
// HTTP Host filtering with a 1,000,000-name list against squid with the same names as a
// dstdomain ACL (both forward allowed requests to the same origin).
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync, createWriteStream } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startLab } from "../dist/index.js";
import { goal, median, table } from "./lib.mjs";

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const LIST = Number(process.env.BENCH_NAMES ?? 1_000_000);
const BULK = Number(process.env.BENCH_BULK_BYTES ?? 2 ** 30);
for (const tool of ["wrk", "curl", "squid"]) {
  if (spawnSync("which", [tool]).status !== 0) { console.error(`bench interceptor: ${tool} is missing (Debian: apt-get install wrk curl squid)`); process.exit(2); }
}
const dir = mkdtempSync(join(tmpdir(), "chokepoint-bench-icpt-"));
const cleanup = [];
process.on("exit", () => { for (const c of cleanup) try { c(); } catch {} rmSync(dir, { recursive: true, force: true }); });
process.env.CHOKEPOINT_CONFDIR = join(dir, "conf");

/** Runs a command without blocking this process's event loop (the lab under test lives here). */
function runAsync(cmd, args) {
  return new Promise((resolve) => {
    const c = spawn(cmd, args, { stdio: ["ignore", "pipe", "ignore"] });
    let out = "";
    c.stdout.on("data", (d) => (out += d));
    c.on("close", () => resolve(out));
  });
}

async function wrk(url, { close = false, script } = {}) {
  const args = ["-t1", "-c50", `-d${SECONDS}s`, ...(close ? ["-H", "Connection: close"] : []), ...(script ? ["-s", script] : []), url];
  const out = await runAsync("wrk", args);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const errors = /Socket errors: (.*)/.exec(out)?.[1] ?? "";
  return { rps, non2xx, errors };
}
function luaPath(path, name) {
  const f = join(dir, `${name}.lua`);
  writeFileSync(f, `wrk.method = "GET"\nwrk.path = "${path}"\n`);
  return f;
}
async function curlRate(args) {
  return Number(await runAsync("curl", ["-s", "-o", "/dev/null", "-w", "%{speed_download}", "--max-time", "120", ...args]));
}

// --- 1. allowed flows: through the interceptor vs direct to the origin -----------------
const lab = await startLab({ profiles: ["example-basics"] });
cleanup.push(() => lab.stop());
const origin = lab.origin.address;
const proxy = lab.endpoints.httpProxy;
const viaProxy = luaPath("http://site.example/", "via");
const rows = [];
const res = { ka: [[], []], close: [[], []], bulk: [[], []] };
for (let r = 0; r < RUNS; r++) {
  res.ka[0].push((await wrk(`http://127.0.0.1:${origin.port}/`, {})).rps);
  res.ka[1].push((await wrk(`http://127.0.0.1:${proxy.port}/`, { script: viaProxy })).rps);
  res.close[0].push((await wrk(`http://127.0.0.1:${origin.port}/`, { close: true })).rps);
  res.close[1].push((await wrk(`http://127.0.0.1:${proxy.port}/`, { close: true, script: viaProxy })).rps);
  res.bulk[0].push(await curlRate(["-H", "Host: bulk.example", `http://127.0.0.1:${origin.port}/bytes/${BULK}`]));
  res.bulk[1].push(await curlRate(["-x", `http://127.0.0.1:${proxy.port}`, `http://bulk.example/bytes/${BULK}`]));
}
await lab.stop();
const fmt = (x) => Math.round(x).toLocaleString("en");
const gib = (BULK / 2 ** 30).toFixed(BULK >= 2 ** 30 ? 0 : 2);
const ratio = (k) => median(res[k][1].map((v, i) => v / res[k][0][i]));
rows.push({ measure: "keep-alive requests/s (wrk -c50)", direct: fmt(median(res.ka[0])), "through interceptor": fmt(median(res.ka[1])), ratio: ratio("ka").toFixed(2) });
rows.push({ measure: "new connections/s (Connection: close)", direct: fmt(median(res.close[0])), "through interceptor": fmt(median(res.close[1])), ratio: ratio("close").toFixed(2) });
rows.push({ measure: `${gib} GiB transfer, MiB/s`, direct: fmt(median(res.bulk[0]) / 2 ** 20), "through interceptor": fmt(median(res.bulk[1]) / 2 ** 20), ratio: ratio("bulk").toFixed(2) });
console.log(`allowed flows, medians of ${RUNS} runs (${SECONDS} s each; ratios are medians of per-run ratios)`);
table(rows);

// --- 2. Host filtering with a 1M-name list vs squid ----------------------------------------
const names = [];
for (let i = 0; i < LIST; i++) names.push(`site${i}.blocked${i % 10}.example`);
writeFileSync(join(dir, "hosts.txt"), names.map((n) => `.${n}`).join("\n") + "\n");
writeFileSync(join(dir, "filter.yaml"), `id: bench-host\ntitle: bench\ncountry: ZZ\ntimezone: UTC\nperiod: { start: "2000-01-01" }\nnetworks: [default]\nrules:\n  - { id: list, match: { host: { file: hosts.txt } }, action: { blockpage: { status: 403, body: blocked } } }\n`);
const filtering = await startLab({ profiles: [join(dir, "filter.yaml")] });
cleanup.push(() => filtering.stop());
const fo = filtering.origin.address;
const squidConf = createWriteStream(join(dir, "squid.conf"));
squidConf.write(`http_port 127.0.0.1:23128\npid_filename ${join(dir, "squid.pid")}\ncache_log ${join(dir, "cache.log")}\naccess_log none\ncache deny all\ncache_mem 8 MB\nacl blocked dstdomain "${join(dir, "hosts.txt")}"\nhttp_access deny blocked\nhttp_access allow all\ncache_peer 127.0.0.1 parent ${fo.port} 0 no-query originserver no-digest name=origin\nnever_direct allow all\nshutdown_lifetime 0 seconds\n`);
await new Promise((r) => squidConf.end(r));
const t0 = performance.now();
const squid = spawn("squid", ["-N", "-f", join(dir, "squid.conf")], { stdio: "ignore" });
cleanup.push(() => squid.kill("SIGKILL"));
for (;;) {
  const ok = await runAsync("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "-x", "http://127.0.0.1:23128", "http://allowed.example/"]);
  if (ok === "200") break;
  if (performance.now() - t0 > 180_000 || squid.exitCode !== null) { console.error("squid did not start"); process.exit(1); }
  await new Promise((r) => setTimeout(r, 500));
}
const squidStart = performance.now() - t0;
// Half the requests ask for a listed name (or a subdomain of one), half for others.
const lua = join(dir, "mixed.lua");
writeFileSync(lua, `local n = 0\nrequest = function()\n  n = n + 1\n  local host\n  if n % 2 == 0 then host = "www.site" .. ((n * 7919) % ${LIST}) .. ".blocked" .. (((n * 7919) % ${LIST}) % 10) .. ".example" else host = "host" .. n .. ".allowed.example" end\n  return wrk.format("GET", "http://" .. host .. "/", { ["Host"] = host, ["Connection"] = "close" })\nend\n`);
const filt = { ours: [], squid: [] };
let blockedShare = 0;
for (let r = 0; r < RUNS; r++) {
  const a = await wrk(`http://127.0.0.1:${filtering.endpoints.httpProxy.port}/`, { script: lua });
  const b = await wrk("http://127.0.0.1:23128/", { script: lua });
  filt.ours.push(a.rps);
  filt.squid.push(b.rps);
  blockedShare = a.non2xx;
}
await filtering.stop();
squid.kill("SIGTERM");
const filterRatio = median(filt.ours.map((v, i) => v / filt.squid[i]));
console.log(`\nHTTP Host filtering, ${LIST.toLocaleString("en")} names, half the requests blocked, new connection per request; squid started in ${(squidStart / 1000).toFixed(1)} s`);
table([
  { server: "chokepoint interceptor", "requests/s": fmt(median(filt.ours)), runs: filt.ours.map(fmt).join(" ") },
  { server: "squid (dstdomain ACL)", "requests/s": fmt(median(filt.squid)), runs: filt.squid.map(fmt).join(" ") },
]);
console.log(`ratio chokepoint/squid ${filterRatio.toFixed(2)} (last run: ${blockedShare} blocked responses from chokepoint)`);
goal("bulk through the interceptor >= 0.8 of direct", ratio("bulk") >= 0.8, ratio("bulk").toFixed(2));
goal("new connections >= 0.5 of direct", ratio("close") >= 0.5, ratio("close").toFixed(2));
goal("Host filtering >= squid", filterRatio >= 1, filterRatio.toFixed(2));
process.exit(0);
