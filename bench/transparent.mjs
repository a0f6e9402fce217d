// Transparent mode (Linux, root): new connections per second and bulk throughput from a
// client namespace to the world, through the lab (TPROXY -> interceptor -> world origin)
// against plain kernel forwarding in the same namespaces (the censor's TPROXY rule swapped
// for `forward accept`), alternating rounds, medians. Every round is bounded in time.
import { spawn } from "node:child_process";
import { goal, median, table } from "./lib.mjs";

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 4);
const CONCURRENCY = 32;

if (process.getuid?.() !== 0) {
  console.log("skipped: transparent mode needs root (network namespaces, nftables, TPROXY)");
  process.exit(0);
}
const { startSession } = await import("../dist/transparent/session.js");
const { sh, CENSOR_NS, TPROXY_RULE } = await import("../dist/transparent/topology.js");

// The load generator, run inside the client namespace: mode conn (one short HTTP exchange
// per connection, CONCURRENCY at a time) or bulk (one download, bytes per second).
const LOAD = `
const net = require("node:net");
const [mode, host, port, seconds, conc] = process.argv.slice(1);
const until = Date.now() + Number(seconds) * 1000;
let conns = 0, bytes = 0, errors = 0;
const t0 = process.hrtime.bigint();
function one() {
  if (Date.now() >= until) return Promise.resolve();
  return new Promise((resolve) => {
    const s = net.connect(Number(port), host);
    s.setNoDelay(true);
    const path = mode === "bulk" ? "/bytes/1073741824" : "/";
    s.on("connect", () => s.write("GET " + path + " HTTP/1.1\\r\\nHost: bench.example\\r\\nConnection: close\\r\\n\\r\\n"));
    s.on("data", (d) => { bytes += d.length; if (mode === "bulk" && Date.now() >= until) s.destroy(); });
    s.on("error", () => { errors++; });
    s.on("close", () => { conns++; resolve(); });
  }).then(one);
}
Promise.all(Array.from({ length: mode === "bulk" ? 1 : Number(conc) }, one)).then(() => {
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(JSON.stringify({ conns, bytes, errors, secs }));
});
`;

function load(ns, mode, ip) {
  return new Promise((resolve, reject) => {
    const c = spawn("ip", ["netns", "exec", ns, process.execPath, "-e", LOAD, mode, ip, "80", String(SECONDS), String(CONCURRENCY)], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    c.stdout.on("data", (d) => (out += d));
    c.on("exit", (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`load exited ${code}`))));
  });
}

const nft = (text) => sh("ip", ["netns", "exec", CENSOR_NS, "nft", "-f", "-"], text);
async function kernelForwarding(on) {
  await sh("ip", ["netns", "exec", CENSOR_NS, "sysctl", "-qw", `net.ipv4.ip_forward=${on ? 1 : 0}`]);
  if (on) await nft("flush chain inet chokepoint mangle_pre\nadd rule inet chokepoint forward accept\n");
  else await nft(`flush chain inet chokepoint forward\nadd rule inet chokepoint mangle_pre ${TPROXY_RULE}\n`);
}

const session = await startSession({ profiles: ["example-basics"] });
try {
  const ns = session.namespaceOf(session.network);
  // A fresh world address every round: conntrack entries of the other path's round (same
  // client ports, TIME_WAIT) would otherwise stall the next one's SYNs.
  const addressOf = async (name) => (await sh("ip", ["netns", "exec", ns, "dig", "+short", name, "@198.18.77.77"])).trim().split("\n")[0];
  const rounds = { lab: { conn: [], bulk: [] }, kernel: { conn: [], bulk: [] } };
  for (let i = 0; i < RUNS; i++) {
    for (const path of i % 2 ? ["kernel", "lab"] : ["lab", "kernel"]) {
      await kernelForwarding(path === "kernel");
      const c = await load(ns, "conn", await addressOf(`conn-${i}-${path}.bench.example`));
      const b = await load(ns, "bulk", await addressOf(`bulk-${i}-${path}.bench.example`));
      rounds[path].conn.push(c.conns / c.secs);
      rounds[path].bulk.push(b.bytes / b.secs);
      if (c.errors) console.log(`  (${path}: ${c.errors} connection errors)`);
    }
  }
  await kernelForwarding(false);
  const rows = ["lab", "kernel"].map((p) => ({
    path: p === "lab" ? "through the lab (TPROXY)" : "kernel forwarding",
    "conn/s (median)": Math.round(median(rounds[p].conn)),
    "conn/s runs": rounds[p].conn.map(Math.round).join(" "),
    "bulk MiB/s (median)": (median(rounds[p].bulk) / 2 ** 20).toFixed(0),
  }));
  table(rows);
  const ratio = median(rounds.lab.conn) / median(rounds.kernel.conn);
  const bulk = median(rounds.lab.bulk) / median(rounds.kernel.bulk);
  goal("new connections/s, lab vs kernel forwarding >= 0.7", ratio >= 0.7, ratio.toFixed(2));
  console.log(`bulk throughput, lab vs kernel forwarding: ${bulk.toFixed(2)}`);
} finally {
  await session.stop();
}
