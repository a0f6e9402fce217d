// The on-path box (Linux, root): new connections per second, bulk throughput and the time a
// handshake takes, from a client namespace to the world's origin over the same router hops,
// with the box in the path (NFQUEUE for the first packets of each flow, nft sets after)
// against plain kernel forwarding (the box's queue rule and marks removed). Alternating
// rounds, medians; every round bounded in time. Also: packets per second through the queue.
import { goal, median, table } from "./lib.mjs";
import { load } from "./netload.mjs";

const RUNS = Number(process.env.BENCH_RUNS ?? 3);

if (process.getuid?.() !== 0) {
  console.log("skipped: the on-path box needs root (network namespaces, nftables, NFQUEUE)");
  process.exit(0);
}
const { startSession } = await import("../dist/transparent/session.js");
const { sh, CENSOR_NS } = await import("../dist/transparent/topology.js");
const { QUEUE_RULE } = await import("../dist/transparent/onpath.js");

const inBox = (...args) => sh("ip", ["netns", "exec", CENSOR_NS, ...args]);
const MARKS = "flush chain inet chokepoint box_queue\n";
let saved;
async function boxInPath(on) {
  if (on) {
    await inBox("nft", "-f", "-").catch(() => undefined);
    await sh("ip", ["netns", "exec", CENSOR_NS, "nft", "-f", "-"], saved);
    await inBox("iptables", ...QUEUE_RULE);
  } else {
    await inBox("iptables", ...QUEUE_RULE.map((a) => (a === "-A" ? "-D" : a))).catch(() => undefined);
    await sh("ip", ["netns", "exec", CENSOR_NS, "nft", "-f", "-"], MARKS);
  }
}
/** Packets the kernel handed to the box so far (the NFQUEUE rule's counter). */
async function queued() {
  const out = await inBox("iptables", "-t", "mangle", "-L", "PREROUTING", "-v", "-x", "-n");
  const line = out.split("\n").find((l) => l.includes("NFQUEUE"));
  return line ? Number(line.trim().split(/\s+/)[0]) : 0;
}

const session = await startSession({ profiles: ["kz-2024-tls-timeout"], at: "2024-05-14T20:00", datapath: "onpath" });
try {
  const ns = session.namespaceOf(session.network);
  // The box's marking rules, to put back after a kernel-forwarding round.
  const chainText = await inBox("nft", "list", "chain", "inet", "chokepoint", "box_queue");
  if (!/jump box_read/.test(chainText)) throw new Error(`the box's queue chain is not what this benchmark expects:\n${chainText}`);
  saved = `flush chain inet chokepoint box_queue\n${chainText.split("\n").filter((l) => /^\s+(ip |meta |ct |jump )/.test(l)).map((l) => `add rule inet chokepoint box_queue ${l.trim().replace(/counter packets \d+ bytes \d+ /, "counter ")}`).join("\n")}\n`;
  const addressOf = async (name) => (await sh("ip", ["netns", "exec", ns, "dig", "+short", name, "@198.18.77.77"])).trim().split("\n")[0];
  const rounds = { box: { conn: [], bulk: [], hs: [], pps: [] }, kernel: { conn: [], bulk: [], hs: [] } };
  for (let i = 0; i < RUNS; i++) {
    for (const path of i % 2 ? ["kernel", "box"] : ["box", "kernel"]) {
      await boxInPath(path === "box");
      const q0 = await queued();
      const c = await load(ns, "conn", await addressOf(`conn-${i}-${path}.bench.example`));
      const q1 = await queued();
      const b = await load(ns, "bulk", await addressOf(`bulk-${i}-${path}.bench.example`));
      rounds[path].conn.push(c.conns / c.secs);
      rounds[path].bulk.push(b.bytes / b.secs);
      rounds[path].hs.push(c.connectP50);
      if (path === "box") rounds.box.pps.push((q1 - q0) / c.secs);
      if (c.errors) console.log(`  (${path}: ${c.errors} connection errors)`);
    }
  }
  await boxInPath(true);
  table(["box", "kernel"].map((p) => ({
    path: p === "box" ? "through the box (on-path)" : "kernel forwarding, same hops",
    "conn/s (median)": Math.round(median(rounds[p].conn)),
    "conn/s runs": rounds[p].conn.map(Math.round).join(" "),
    "bulk MiB/s (median)": (median(rounds[p].bulk) / 2 ** 20).toFixed(0),
    "handshake p50 ms": median(rounds[p].hs).toFixed(2),
  })));
  const ratio = median(rounds.box.conn) / median(rounds.kernel.conn);
  const bulk = median(rounds.box.bulk) / median(rounds.kernel.bulk);
  console.log(`packets/s through the queue (conn rounds): ${Math.round(median(rounds.box.pps))}`);
  console.log(`handshake latency the box adds (p50): ${(median(rounds.box.hs) - median(rounds.kernel.hs)).toFixed(2)} ms`);
  goal("bulk throughput, box vs kernel forwarding >= 0.95", bulk >= 0.95, bulk.toFixed(2));
  goal("new connections/s, box vs kernel forwarding >= 0.7", ratio >= 0.7, ratio.toFixed(2));
} finally {
  await session.stop();
}
