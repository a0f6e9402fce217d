// Transparent mode (Linux, root): new connections per second and bulk throughput from a
// client namespace to the world, through the lab (TPROXY -> interceptor -> world origin)
// against plain kernel forwarding in the same namespaces (the censor's TPROXY rule swapped
// for `forward accept`), alternating rounds, medians. Every round is bounded in time.
import { goal, median, table } from "./lib.mjs";
import { load } from "./netload.mjs";

const RUNS = Number(process.env.BENCH_RUNS ?? 3);

if (process.getuid?.() !== 0) {
  console.log("skipped: transparent mode needs root (network namespaces, nftables, TPROXY)");
  process.exit(0);
}
const { startSession } = await import("../dist/transparent/session.js");
const { sh, CENSOR_NS, TPROXY_RULE } = await import("../dist/transparent/topology.js");

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
