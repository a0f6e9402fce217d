// The load generator both namespace benchmarks (transparent, onpath) run inside a client
// namespace: conn (short HTTP exchanges, CONCURRENCY at a time, with each connect time) or
// bulk (one download), for SECONDS; it stops by itself.
import { spawn } from "node:child_process";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 4);
const CONCURRENCY = 32;

const LOAD = `
const net = require("node:net");
const [mode, host, port, seconds, conc] = process.argv.slice(1);
const until = Date.now() + Number(seconds) * 1000;
let conns = 0, bytes = 0, errors = 0; const connect = [];
const t0 = process.hrtime.bigint();
function one() {
  if (Date.now() >= until) return Promise.resolve();
  return new Promise((resolve) => {
    const c0 = process.hrtime.bigint();
    const s = net.connect(Number(port), host);
    s.setNoDelay(true);
    const path = mode === "bulk" ? "/bytes/1073741824" : "/";
    s.on("connect", () => { if (connect.length < 5000) connect.push(Number(process.hrtime.bigint() - c0) / 1e6); s.write("GET " + path + " HTTP/1.1\\r\\nHost: bench.example\\r\\nConnection: close\\r\\n\\r\\n"); });
    s.on("data", (d) => { bytes += d.length; if (mode === "bulk" && Date.now() >= until) s.destroy(); });
    s.on("error", () => { errors++; });
    s.on("close", () => { conns++; resolve(); });
  }).then(one);
}
Promise.all(Array.from({ length: mode === "bulk" ? 1 : Number(conc) }, one)).then(() => {
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  connect.sort((a, b) => a - b);
  console.log(JSON.stringify({ conns, bytes, errors, secs, connectP50: connect[Math.floor(connect.length / 2)] ?? 0 }));
});
`;

export function load(ns, mode, ip) {
  return new Promise((resolve, reject) => {
    const c = spawn("ip", ["netns", "exec", ns, process.execPath, "-e", LOAD, mode, ip, "80", String(SECONDS), String(CONCURRENCY)], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    c.stdout.on("data", (d) => (out += d));
    c.on("exit", (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`load exited ${code}`))));
  });
}

