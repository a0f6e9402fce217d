// Relay: messages per second and delivery latency through the lab's relay (the 2014 Almaty
// profile, outside its outage, so both legs of every message are judged and allowed), against
// a bare JSON-lines forwarder measured in the same run (the same frames: register, send ->
// ack, message, receipt; no policy, no events). Both run as their own process; the load
// comes from this one: PAIRS sender/recipient pairs over TCP, each sender keeping WINDOW
// messages in flight, for SECONDS, in RUNS alternating rounds. Latency: send -> arrival at
// the recipient, at a fixed 500 messages/s.
import { spawn } from "node:child_process";
import { connect } from "node:net";
import { goal, median, percentile, table } from "./lib.mjs";

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const PAIRS = 20;
const WINDOW = 50;

const BASELINE = `
const net = require("node:net");
const numbers = new Map();
net.createServer((s) => {
  s.setEncoding("utf8");
  let buf = "", me;
  const out = (f) => s.write(JSON.stringify(f) + "\\n");
  s.on("data", (c) => {
    buf += c;
    for (let nl = buf.indexOf("\\n"); nl >= 0; nl = buf.indexOf("\\n")) {
      const f = JSON.parse(buf.slice(0, nl)); buf = buf.slice(nl + 1);
      if (f.type === "register") { me = f.number; numbers.set(me, s); out({ type: "registered", number: me, network: f.network }); }
      else if (f.type === "send") {
        out({ type: "ack", id: f.id, status: "accepted" });
        const to = numbers.get(f.to);
        if (to) { to.write(JSON.stringify({ type: "message", id: f.id, from: me, to: f.to, via: f.via, text: f.text, sentAt: new Date().toISOString() }) + "\\n");
          out({ type: "receipt", id: f.id, to: f.to, status: "delivered", at: new Date().toISOString() }); }
      }
    }
  });
  s.on("error", () => s.destroy());
}).listen(0, "127.0.0.1", function () { console.log(JSON.stringify({ ready: true, endpoints: { relay: this.address() } })); });
`;

function startServer(name, args) {
  const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, CHOKEPOINT_CONFDIR: process.env.CHOKEPOINT_CONFDIR ?? `/tmp/chokepoint-bench-relay-${process.pid}` } });
  process.on("exit", () => child.kill("SIGKILL"));
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`${name} did not start in 60 s`)), 60_000);
    child.stdout.on("data", (d) => {
      out += d;
      const line = out.split("\n").find((l) => l.startsWith('{"ready"'));
      if (line) { clearTimeout(timer); resolve({ child, port: JSON.parse(line).endpoints.relay.port }); }
    });
    child.on("exit", (code) => reject(new Error(`${name} exited (${code})`)));
  });
}

/** A client speaking JSON lines; calls onFrame for each frame. */
function client(port, onFrame) {
  return new Promise((resolve) => {
    const s = connect(port, "127.0.0.1", () => resolve(s));
    s.setNoDelay(true);
    s.setEncoding("utf8");
    let buf = "";
    s.on("data", (c) => {
      buf += c;
      for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        onFrame(JSON.parse(line));
      }
    });
  });
}

const NET = "kcell-almaty-mobile";
let round = 0;

/** PAIRS pairs; every sender keeps WINDOW messages in flight; returns receipts per second. */
async function throughput(port) {
  round++;
  let receipts = 0, stop = false;
  const sockets = [];
  const senders = [];
  for (let i = 0; i < PAIRS; i++) {
    const rnum = `+7701${round}${String(i).padStart(4, "0")}`, snum = `+7702${round}${String(i).padStart(4, "0")}`;
    const r = await client(port, () => undefined);
    r.write(JSON.stringify({ type: "register", number: rnum, network: NET }) + "\n");
    let seq = 0;
    const send = (s) => s.write(JSON.stringify({ type: "send", id: `m${++seq}`, to: rnum, text: "x".repeat(64), via: "whatsapp" }) + "\n");
    const s = await client(port, (f) => {
      if (f.type === "receipt") { receipts++; if (!stop) send(s); }
    });
    s.write(JSON.stringify({ type: "register", number: snum, network: NET }) + "\n");
    sockets.push(r, s);
    senders.push(() => { for (let k = 0; k < WINDOW; k++) send(s); });
  }
  await new Promise((res) => setTimeout(res, 200));
  const t0 = performance.now();
  senders.forEach((go) => go());
  await new Promise((res) => setTimeout(res, SECONDS * 1000));
  const rate = receipts / ((performance.now() - t0) / 1000);
  stop = true;
  await new Promise((res) => setTimeout(res, 300));
  sockets.forEach((s) => s.destroy());
  return rate;
}

/** One pair, a fixed 500 messages/s for 3 s: send -> arrival latencies in ms. */
async function latency(port) {
  round++;
  const sentAt = new Map(), lat = [];
  const rnum = `+7703${round}0001`, snum = `+7703${round}0002`;
  const r = await client(port, (f) => { if (f.type === "message") lat.push(performance.now() - sentAt.get(f.text)); });
  r.write(JSON.stringify({ type: "register", number: rnum, network: NET }) + "\n");
  const s = await client(port, () => undefined);
  s.write(JSON.stringify({ type: "register", number: snum, network: NET }) + "\n");
  await new Promise((res) => setTimeout(res, 200));
  for (let i = 0; i < 1500; i++) {
    sentAt.set(`t${i}`, performance.now());
    s.write(JSON.stringify({ type: "send", id: `l${i}`, to: rnum, text: `t${i}`, via: "sms" }) + "\n");
    if (i % 10 === 9) await new Promise((res) => setTimeout(res, 20));
  }
  await new Promise((res) => setTimeout(res, 500));
  r.destroy(); s.destroy();
  return { p50: percentile(lat, 50), p99: percentile(lat, 99), n: lat.length };
}

const lab = await startServer("chokepoint", ["bin/chokepoint.js", "up", "--profile", "kz-2014-02-13-almaty-messaging", "--at", "2014-02-13T12:00:00+06:00", "--ports", "auto", "--json"]);
const base = await startServer("baseline", ["-e", BASELINE]);
console.log(`${PAIRS} sender/recipient pairs over TCP, ${WINDOW} messages in flight each, ${SECONDS} s a round, ${RUNS} rounds; every message judged on both legs, allowed`);
await throughput(lab.port); // warm-up
await throughput(base.port);
const runs = { lab: [], base: [] };
for (let i = 0; i < RUNS; i++) {
  runs.lab.push(await throughput(lab.port));
  runs.base.push(await throughput(base.port));
}
const latLab = await latency(lab.port), latBase = await latency(base.port);
table([
  { server: "chokepoint relay", "messages/s": Math.round(median(runs.lab)).toLocaleString("en"), runs: runs.lab.map(Math.round).join(" "), "p50 @500/s": `${latLab.p50.toFixed(2)} ms`, "p99 @500/s": `${latLab.p99.toFixed(2)} ms`, delivered: `${latLab.n}/1500` },
  { server: "bare JSON-lines forwarder", "messages/s": Math.round(median(runs.base)).toLocaleString("en"), runs: runs.base.map(Math.round).join(" "), "p50 @500/s": `${latBase.p50.toFixed(2)} ms`, "p99 @500/s": `${latBase.p99.toFixed(2)} ms`, delivered: `${latBase.n}/1500` },
]);
const ratio = median(runs.lab.map((x, i) => x / runs.base[i]));
console.log(`ratio relay/forwarder: ${ratio.toFixed(2)}`);
goal("relay at least 0.5 of a bare forwarder's messages/s", ratio >= 0.5, ratio.toFixed(2));
goal("every message delivered at 500/s", latLab.n === 1500, `${latLab.n}/1500`);
lab.child.kill("SIGTERM");
base.child.kill("SIGKILL");
process.exit(0);
